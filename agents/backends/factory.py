"""Open a chat backend from a `ModelSpec`, the form profiles and `--model` flags name models in."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

from agents.backends.chat import BackendError, ChatModel
from agents.backends.openai_client import OpenAIBackend, RetryPolicy
from agents.backends.tiny_models import NAMES as TINY_NAMES
from agents.backends.vllm_server import ServeSettings, VLLMBackend

BACKENDS = ("transformers", "openai", "vllm")


@dataclass(frozen=True)
class ModelSpec:
    """One model and how to reach it."""

    model: str
    """Hub id, local folder, or `tiny:NAME` (a tiny random-weight model built locally)."""
    backend: str = "transformers"
    """`transformers` (in-process), `openai` (any compatible server) or `vllm` (start one)."""
    base_urls: tuple[str, ...] = field(default_factory=tuple)
    """`openai` only: endpoints ending in /v1, used round-robin."""
    api_key_env: str | None = None
    """`openai` only: the environment variable that holds the API key (the key never enters a file)."""
    concurrency: int = 16
    """Requests in flight per endpoint."""
    device: str = "cpu"
    """`transformers` only: cpu, cuda, cuda:1, ..."""
    tensor_parallel_size: int = 1
    """`vllm` only: GPUs per server."""
    gpu_memory_utilization: float = 0.9
    """`vllm` only: fraction of each GPU's memory vLLM may take."""
    server_command: str | None = None
    """`vllm` only: replaces `vllm serve ...`; may use {model} {host} {port} {tp} {gpu_mem} {python}."""
    max_model_len: int | None = None
    """`vllm`: the server's context (--max-model-len). Every backend: the limit the preflight checks prompts
    against (None: the model config's max_position_embeddings)."""
    max_images_per_prompt: int | None = None
    """`vllm`: images vLLM accepts in one prompt (--limit-mm-per-prompt); size it to the largest task."""
    max_pixels: int | None = None
    """`vllm`, Qwen2-VL-class models: each image resized to at most this many pixels (--mm-processor-kwargs)."""
    timeout: float = 120.0
    """`openai`/`vllm`: seconds for one HTTP request; a 70B model writes 4k tokens in about a minute."""
    retries: int = 5
    """`openai`/`vllm`: tries per call (the first included) on 429, 5xx, connection errors and timeouts."""

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise BackendError(f"backend: unknown backend {self.backend!r}; choose one of {', '.join(BACKENDS)}")
        if self.backend == "openai" and not self.base_urls:
            raise BackendError(f"model {self.model}: the openai backend needs base_urls")

    @classmethod
    def from_dict(cls, data: dict, where: str = "model") -> "ModelSpec":
        """A spec from a profile or recipe entry. `model` takes the `--model` forms too
        (`openai:NAME@URL`, `vllm:ID`, `transformers:ID`); the entry's other fields then refine it."""
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise BackendError(f"{where}: unknown field {sorted(unknown)[0]!r}")
        if not isinstance(data.get("model"), str) or not data["model"].strip():
            raise BackendError(f"{where}.model: a model name is required")
        values = dict(data)
        if isinstance(values.get("base_urls"), (list, str)):
            urls = values["base_urls"]
            values["base_urls"] = (urls,) if isinstance(urls, str) else tuple(urls)
        parsed = parse_model_arg(values["model"], where=f"{where}.model")
        if parsed.backend != "transformers" or values["model"].startswith("transformers:"):
            if values.get("backend", parsed.backend) != parsed.backend:
                raise BackendError(f"{where}: model says backend {parsed.backend}, backend says {values['backend']}")
            values = {**{k: v for k, v in asdict(parsed).items() if k in ("model", "backend", "api_key_env")},
                      **({"base_urls": parsed.base_urls} if parsed.base_urls else {}),
                      **{k: v for k, v in values.items() if k not in ("model", "backend")}}
        return cls(**values)


def open_backend(spec: ModelSpec) -> ChatModel:
    if spec.backend == "transformers":
        # here: torch and transformers load only when a model runs in this process
        from agents.backends.transformers_local import TransformersBackend

        return TransformersBackend(spec.model, device=spec.device)
    if spec.backend == "openai":
        key = os.environ.get(spec.api_key_env) if spec.api_key_env else None
        return OpenAIBackend(spec.model, list(spec.base_urls), api_key=key, concurrency=spec.concurrency,
                             retry=RetryPolicy(attempts=spec.retries, timeout=spec.timeout))
    return VLLMBackend(serve_settings(spec), concurrency=spec.concurrency,
                       retry=RetryPolicy(attempts=spec.retries, timeout=spec.timeout))


def serve_settings(spec: ModelSpec) -> ServeSettings:
    """What a `vllm` spec's server is started with: specs that differ only in client settings
    (concurrency, timeout, retries) share one server."""
    return ServeSettings(spec.model, spec.tensor_parallel_size, spec.gpu_memory_utilization, spec.max_model_len,
                         spec.max_images_per_prompt, spec.max_pixels, spec.server_command)


def parse_model_arg(text: str, where: str = "--model") -> ModelSpec:
    """The `--model` flag's forms, shared by every command that names a model:

        tiny:qwen2-vl | ./folder | org/name           in-process transformers
        transformers:org/name                          the same, explicit
        openai:NAME@http://h:8000/v1[,http://h2/v1]    an OpenAI-compatible server (key in $OPENAI_API_KEY)
        vllm:org/name                                  start `vllm serve org/name` here
    """
    backend, _, rest = text.partition(":")
    if backend == "openai":
        name, _, urls = rest.partition("@")
        if not name or not urls:
            raise BackendError(f"{where} {text!r}: expected openai:NAME@http://host:port/v1")
        return ModelSpec(model=name, backend="openai", base_urls=tuple(urls.split(",")), api_key_env="OPENAI_API_KEY")
    if backend in ("transformers", "vllm") and rest:
        return ModelSpec(model=rest, backend=backend)
    if not text.strip():
        raise BackendError(f"{where}: empty model name")
    if backend == "tiny" and rest not in TINY_NAMES:  # refused now, not after the run has started
        known = ", ".join("tiny:" + n for n in TINY_NAMES)
        raise BackendError(f"{where}: unknown tiny model {text!r}; known: {known}")
    return ModelSpec(model=text, backend="transformers")
