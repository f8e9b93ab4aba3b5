"""The backend ImageChain evaluation generates with: any `--model` form, plus an optional LoRA adapter.

An adapter needs the model in this process (`TransformersBackend(..., adapter=)` applies it with
peft, and refuses prompts that do not fit the context instead of cutting them). Scene visuals are
one representative frame per scene, as for every chat backend; the paper's per-scene frame average
needs the vision tower's features and belongs to the training code.

    backend = open_generator("tiny:llava-next", adapter="out/imagechain/adapter")
"""

from __future__ import annotations

from agents.backends.chat import ChatModel
from agents.backends.factory import open_backend, parse_model_arg
from schemas.errors import DataError


def open_generator(model: str, adapter: str | None = None, device: str = "cpu") -> ChatModel:
    """A backend for `model` (the --model forms of agents.backends.factory); an adapter needs in-process."""
    spec = parse_model_arg(model)
    if spec.backend == "transformers":
        # here: it imports torch and transformers; `imagechain --help` imports this module
        from agents.backends.transformers_local import TransformersBackend

        return TransformersBackend(spec.model, device=device, adapter=adapter)
    if adapter:
        raise DataError(f"adapter: {model!r} is served over HTTP; serve the merged model there, "
                        "or name the base model without a prefix to load the adapter in-process")
    return open_backend(spec)
