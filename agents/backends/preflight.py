"""Preflight: before a run or an eval starts, its largest prompts must fit the model, counted by the model itself.

A 27-image task that overflows the context, or carries more images than the server accepts, fails
every call it makes, one by one, after the run has started. The preflight refuses it first, naming
the task, its token count and the limit:

    prompts = [Prompt("task itmr/itmr-0001", messages, reply_tokens=4 * 256), ...]
    preflight(spec, prompts)          # BackendError: one line, or None when every prompt fits

Tokens are counted with the model's own processor (its image processor and chat template), the way the
in-process backend and vLLM build the prompt. An `openai` endpoint's model is a name on someone's server
with no processor here, so it is not checked (its server still refuses what does not fit).
"""

from __future__ import annotations

from dataclasses import dataclass

from agents.backends.chat import BackendError, ModelNotFound
from agents.backends.factory import ModelSpec
from agents.backends.tiny_models import resolve_model_id


@dataclass(frozen=True)
class Prompt:
    """One prompt a run will send, in the backends' message shape (text and image-path parts)."""

    name: str
    """What the error names: "task itmr/itmr-0001"."""
    messages: list[dict]
    reply_tokens: int = 0
    """Tokens the model may still add in and after this prompt (its replies so far, its answer)."""


@dataclass(frozen=True)
class Measured:
    name: str
    tokens: int
    images: int


def preflight(spec: ModelSpec, prompts: list[Prompt]) -> list[Measured]:
    """Every prompt measured; BackendError for the first that does not fit (the largest is named)."""
    if spec.backend == "openai" or not prompts:
        return []
    counter = TokenCounter(spec.model)
    limit = spec.max_model_len or counter.context
    measured = [Measured(p.name, counter.count(p.messages) + p.reply_tokens, _images(p.messages)) for p in prompts]
    largest = max(measured, key=lambda m: m.tokens)
    if largest.tokens > limit:
        raise BackendError(f"{spec.model}: {largest.name} needs {largest.tokens} tokens (prompt and replies), over "
                           f"the model's limit of {limit} (max_model_len); shorten the task or raise the limit")
    most = max(measured, key=lambda m: m.images)
    if spec.backend == "vllm" and most.images > (spec.max_images_per_prompt or 1):
        raise BackendError(f"{spec.model}: {most.name} has {most.images} images in one prompt, over the server's "
                           f"limit of {spec.max_images_per_prompt or 1} (max_images_per_prompt)")
    return measured


class TokenCounter:
    """The model's processor (or tokenizer) and its context length, loaded without the weights."""

    def __init__(self, model: str):
        # here: transformers loads only when a preflight runs (`vischain --help` must stay fast)
        from transformers import AutoConfig, AutoTokenizer

        from agents.backends.hf_loading import load_processor

        path = resolve_model_id(model)
        try:
            config = AutoConfig.from_pretrained(path)
        except (OSError, ValueError) as err:
            first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            # The in-process backend's words (hf_loading), so a bad --model reads the same wherever it is caught.
            raise ModelNotFound(f"cannot load model {model!r}: {first_line}") from None
        self.is_vision = hasattr(config, "vision_config")
        self.processor = (load_processor(path, config.model_type) if self.is_vision
                          else AutoTokenizer.from_pretrained(path))
        text_config = getattr(config, "text_config", config)
        self.context = int(getattr(text_config, "max_position_embeddings"))

    def count(self, messages: list[dict]) -> int:
        """Prompt tokens of `messages` as the chat template renders them, generation prompt included."""
        from PIL import Image  # here: only a vision model's count opens images

        if not self.is_vision:
            text = [{"role": m["role"], "content": _text(m)} for m in messages]
            return len(self.processor.apply_chat_template(text, add_generation_prompt=True, tokenize=True,
                                                          return_dict=True)["input_ids"])
        parts = []
        for message in messages:
            content = message["content"] if isinstance(message["content"], list) else [
                {"type": "text", "text": message["content"]}]
            rendered = []
            for part in content:
                if part["type"] == "image":
                    with Image.open(part["path"]) as image:
                        rendered.append({"type": "image", "image": image.convert("RGB")})
                else:
                    rendered.append(part)
            parts.append({"role": message["role"], "content": rendered})
        encoded = self.processor.apply_chat_template(parts, add_generation_prompt=True, tokenize=True,
                                                     return_dict=True)
        return len(encoded["input_ids"][0])


def _text(message: dict) -> str:
    content = message["content"]
    if isinstance(content, str):
        return content
    if any(part["type"] == "image" for part in content):
        raise BackendError("preflight: a text-only model is given an image")
    return "".join(part["text"] for part in content)


def _images(messages: list[dict]) -> int:
    return sum(1 for m in messages if isinstance(m["content"], list) for p in m["content"] if p["type"] == "image")
