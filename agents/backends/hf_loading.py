"""Load a Hugging Face model and its processor from a hub id or a local folder.

One function serves the in-process chat backend and ImageChain training alike. It works without
torchvision: Qwen2-VL's stock processor insists on a video processor, and every video processor in
transformers 5 needs torchvision, so for that family we assemble an image-only processor from the
folder's image processor (the PIL one) and tokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    AutoProcessor,
    AutoTokenizer,
    Qwen2_5_VLProcessor,
    Qwen2VLImageProcessorPil,
    Qwen2VLProcessor,
)
from transformers.processing_utils import ProcessorMixin

from agents.backends.chat import ModelNotFound

QWEN_VL_TYPES = {"qwen2_vl", "qwen2_5_vl"}


@dataclass
class LoadedModel:
    model: Any
    processor: Any
    """A multimodal processor for vision models, a tokenizer for text-only ones."""
    is_vision: bool

    @property
    def tokenizer(self):
        return getattr(self.processor, "tokenizer", self.processor)


def load_model(model_id: str, *, device: str = "cpu", dtype: str = "auto") -> LoadedModel:

    config = _load_config(model_id)
    is_vision = hasattr(config, "vision_config")
    auto = AutoModelForImageTextToText if is_vision else AutoModelForCausalLM
    model = auto.from_pretrained(model_id, dtype=_torch_dtype(dtype, device)).to(device).eval()
    processor = load_processor(model_id, config.model_type) if is_vision else _load_tokenizer(model_id)
    return LoadedModel(model=model, processor=processor, is_vision=is_vision)


def _load_config(model_id: str):

    looks_local = model_id.startswith((".", "/", "~")) or Path(model_id).exists()
    if looks_local and not (Path(model_id).expanduser() / "config.json").is_file():
        raise ModelNotFound(f"model path does not exist or has no config.json: {model_id}")
    try:
        return AutoConfig.from_pretrained(model_id)
    except (OSError, ValueError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelNotFound(f"cannot load model {model_id!r}: {first_line}") from None


def _torch_dtype(dtype: str, device: str):

    if dtype == "auto":
        # bf16 on GPUs that support it; CPU kernels for bf16 are slow and fp16 ones incomplete.
        use_bf16 = device.startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if use_bf16 else torch.float32
    return getattr(torch, dtype)


def _load_tokenizer(model_id: str):

    return AutoTokenizer.from_pretrained(model_id)


def load_processor(model_id: str, model_type: str):

    if model_type in QWEN_VL_TYPES:
        try:
            processor = AutoProcessor.from_pretrained(model_id)
        except (AttributeError, ImportError, OSError, ValueError):
            processor = None
        # Without torchvision AutoProcessor silently hands back only the tokenizer.
        if processor is None or not hasattr(processor, "image_processor"):
            processor = _image_only_qwen_processor(model_id, model_type)
        return processor
    return AutoProcessor.from_pretrained(model_id)


def _image_only_qwen_processor(model_id: str, model_type: str):

    tokenizer = AutoTokenizer.from_pretrained(model_id)
    image_processor = Qwen2VLImageProcessorPil.from_pretrained(model_id)
    cls = _image_only_class(model_type)
    return cls(image_processor=image_processor, tokenizer=tokenizer, chat_template=tokenizer.chat_template)


def _image_only_class(model_type: str):

    base = Qwen2_5_VLProcessor if model_type == "qwen2_5_vl" else Qwen2VLProcessor

    class ImageOnlyQwenProcessor(base):
        """The stock processor minus its video half (which needs torchvision); images work the same."""

        attributes = ["image_processor", "tokenizer"]

        def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
            self.image_token, self.video_token = "<|image_pad|>", "<|video_pad|>"
            self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
            self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
            ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)

    return ImageOnlyQwenProcessor
