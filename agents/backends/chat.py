"""The one chat-model interface every agent and judge talks to.

Messages are plain dicts in the OpenAI shape, so they can live in graph state and cache keys:

    {"role": "user", "content": [{"type": "text", "text": "Which image shows a gear?"},
                                 {"type": "image", "path": "runs/eng/images/ab12.png"}]}

`content` may also be a plain string. Images are always file paths, never bytes: backends read
the file when they build the request, and the cache keys on the file's SHA-256.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

ROLES = ("system", "user", "assistant")


class BackendError(RuntimeError):
    """A model call failed in a way the caller should report as one line."""


class EndpointUnavailable(BackendError):
    """The endpoint could not be reached, or kept failing after every retry."""


class ModelNotFound(BackendError):
    """The model path or id does not resolve to a loadable model."""


class ContextOverflow(BackendError):
    """The prompt alone fills the model's context: refused, never truncated."""

    def __init__(self, length: int, max_length: int):
        self.length, self.max_length = length, max_length
        super().__init__(f"prompt is {length} tokens, the model's context is {max_length}")


class InvalidSchema(BackendError):
    """The JSON Schema passed for structured output is not a valid JSON Schema."""


@dataclass(frozen=True)
class SamplingParams:
    """Sampling settings shared by every backend."""

    max_tokens: int = 512
    """Upper bound on generated tokens."""
    temperature: float = 0.0
    """0 means greedy decoding."""
    top_p: float = 1.0
    """Nucleus sampling mass; ignored when temperature is 0."""
    seed: int | None = None
    """Sampling seed; a seeded call counts as deterministic and is cached."""
    stop: tuple[str, ...] = ()
    """Strings that end generation; the returned text stops before the first one."""

    @property
    def deterministic(self) -> bool:
        return self.temperature == 0 or self.seed is not None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "stop": list(self.stop)}


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class ChatResult:
    text: str
    model: str
    usage: Usage = field(default_factory=Usage)
    cached: bool = False
    """True when the answer came from the model-call cache, not the model."""


class ChatModel(Protocol):
    """What agents call. `backend` and `model_id` together name the model in cache keys."""

    backend: str
    model_id: str

    async def chat(
        self,
        messages: list[dict],
        *,
        schema: dict | None = None,
        params: SamplingParams = SamplingParams(),
    ) -> ChatResult: ...

    async def aclose(self) -> None: ...


def model_where(model: ChatModel) -> str:
    """"openai model NAME at URL" (or "in this process"): the model and endpoint an error line names.
    Looks through the call cache (`inner`) and the vLLM launcher (`client`) to the HTTP client."""
    inner = getattr(model, "inner", model)
    urls = getattr(getattr(inner, "client", inner), "base_urls", None)
    return f"{inner.backend} model {inner.model_id} at {', '.join(urls) if urls else 'in this process'}"


def normalize_messages(messages: list[dict]) -> list[dict]:
    """Check the message shape and return messages whose content is always a list of parts."""
    if not messages:
        raise ValueError("messages: at least one message is required")
    out = []
    for i, message in enumerate(messages):
        role = message.get("role")
        if role not in ROLES:
            raise ValueError(f"messages[{i}].role: {role!r} is not one of {', '.join(ROLES)}")
        content = message.get("content")
        if isinstance(content, str):
            parts = [{"type": "text", "text": content}]
        elif isinstance(content, list):
            parts = [_check_part(part, f"messages[{i}].content[{j}]") for j, part in enumerate(content)]
        else:
            raise ValueError(f"messages[{i}].content: must be a string or a list of parts")
        out.append({"role": role, "content": parts})
    return out


def _check_part(part: dict, where: str) -> dict:
    kind = part.get("type")
    if kind == "text":
        if not isinstance(part.get("text"), str):
            raise ValueError(f"{where}.text: must be a string")
        return {"type": "text", "text": part["text"]}
    if kind == "image":
        path = part.get("path")
        if not isinstance(path, (str, Path)) or not Path(path).is_file():
            raise ValueError(f"{where}.path: image file not found: {path}")
        return {"type": "image", "path": str(path)}
    raise ValueError(f"{where}.type: {kind!r} is not 'text' or 'image'")


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def apply_stop(text: str, stop: tuple[str, ...]) -> str:
    """Cut the text before the earliest stop string."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=len(text))
    return text[:cut]
