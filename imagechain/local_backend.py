"""The in-process generator for ImageChain evaluation: a transformers model, optionally with a LoRA adapter.

It is the shared `TransformersBackend` plus two things evaluation needs:
- a LoRA adapter folder (as `peft` saves it) applied with `PeftModel.from_pretrained`, so a trained
  variant runs without merging; the model id becomes `MODEL+ADAPTER` in every record;
- a context check: a prompt that does not fit the model's context raises `ContextOverflow` instead
  of being cut (the design's rule: over-long samples fail loudly, never truncate silently).

Scene visuals are one representative frame per scene, as for every chat backend; the paper's
per-scene frame average needs the vision tower's features and belongs to the training code.

    backend = open_generator("tiny:llava-next", adapter="out/imagechain/adapter")
"""

from __future__ import annotations

from pathlib import Path

from agents.backends.chat import ChatModel
from agents.backends.factory import parse_model_arg, open_backend
from agents.backends.transformers_local import TransformersBackend
from imagechain.errors import DataError
from imagechain.generate import ContextOverflow


class LocalGenerator(TransformersBackend):
    def __init__(self, model_id: str, adapter: str | None = None, *, device: str = "cpu", dtype: str = "auto"):
        super().__init__(model_id, device=device, dtype=dtype)
        config = self._loaded.model.config
        self.max_length = int(getattr(getattr(config, "text_config", config), "max_position_embeddings"))
        if adapter:
            self._loaded.model = _with_adapter(self._loaded.model, adapter)
            self.model_id = f"{model_id}+{adapter}"

    def _encode(self, messages: list[dict]):
        inputs = super()._encode(messages)
        length = int(inputs["input_ids"].shape[-1])
        if length >= self.max_length:  # not one token left to generate
            raise ContextOverflow(length, self.max_length)
        return inputs


def _with_adapter(model, adapter: str):
    if not (Path(adapter) / "adapter_config.json").is_file():
        raise DataError(f"adapter: no adapter_config.json in {adapter} (expected a folder saved by peft)")
    from peft import PeftModel

    return PeftModel.from_pretrained(model, adapter).eval()


def open_generator(model: str, adapter: str | None = None, device: str = "cpu") -> ChatModel:
    """A backend for `model` (the --model forms of agents.backends.factory); an adapter needs in-process."""
    spec = parse_model_arg(model)
    if spec.backend == "transformers":
        return LocalGenerator(spec.model, adapter, device=device)
    if adapter:
        raise DataError(f"adapter: {model!r} is served over HTTP; serve the merged model there, "
                        "or name the base model without a prefix to load the adapter in-process")
    return open_backend(spec)
