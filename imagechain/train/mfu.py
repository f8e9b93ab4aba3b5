"""Model FLOPs utilisation of a LoRA training step: achieved model FLOPs over the devices' peak.

Counted per step (the PaLM appendix B convention, no recomputation counted):
- language model, per token: 2N forward + 2N backward to the activations (the base is frozen but the
  gradient must flow through it) + 2N_lora for the adapter weight gradients, plus attention
  12 * layers * hidden * sequence (forward 4, backward 8);
- vision tower and projector, per vision token: 2N forward only (frozen, no gradient flows back).

Peaks are dense bf16 tensor-core numbers from the vendors' data sheets; an unknown device gives no
MFU (None), as does the CPU.

    counts = ParamCounts.of(model)
    flops = step_flops(counts, text_config, lm_tokens=4096, sequence=1024, vision_tokens=23000)
    mfu(flops, seconds=1.3, devices=8)     # 0.41, or None
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers.models.llava_next.modeling_llava_next import image_size_to_num_patches

from imagechain.train.scene_features import is_vision_parameter

# Dense bf16 peak FLOP/s per device, matched on the CUDA device name (first match wins).
PEAK_BF16 = (
    ("H200", 989.4e12), ("H100 PCIe", 756.0e12), ("H100", 989.4e12), ("GH200", 989.4e12),
    ("B200", 2250e12), ("A100", 312e12), ("A800", 312e12), ("L40S", 362.05e12), ("L40", 181.05e12),
    ("A6000", 154.8e12), ("A10G", 70e12), ("A10", 125e12), ("L4", 121e12), ("4090", 165.2e12),
    ("V100", 125e12), ("T4", 65e12),
)


@dataclass
class ParamCounts:
    vision: int
    """Vision tower, projector and image-newline parameters (frozen)."""
    language: int
    """Every other parameter: language model, embeddings, head, LoRA weights."""
    trainable: int
    """Parameters that receive gradients (the LoRA weights)."""

    @classmethod
    def of(cls, model) -> "ParamCounts":
        vision = language = trainable = 0
        for name, param in model.named_parameters():
            count = param.ds_numel if hasattr(param, "ds_numel") else param.numel()  # ZeRO-3 partitions
            if is_vision_parameter(name):
                vision += count
            else:
                language += count
            trainable += count if param.requires_grad else 0
        return cls(vision=vision, language=language, trainable=trainable)


def step_flops(counts: ParamCounts, text_config, lm_tokens: int, sequence: int, vision_tokens: int = 0) -> float:
    """Model FLOPs of one training step over `lm_tokens` language tokens (sequences `sequence` long)."""
    per_token = 4 * counts.language + 2 * counts.trainable
    attention = 12 * text_config.num_hidden_layers * text_config.hidden_size * sequence
    return float(lm_tokens * (per_token + attention) + vision_tokens * 2 * counts.vision)


def peak_flops(device=None) -> float | None:
    """Dense bf16 peak of one CUDA device, or None (CPU, or a device not in PEAK_BF16)."""
    if not torch.cuda.is_available() or (device is not None and getattr(device, "type", str(device)) != "cuda"):
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_BF16 if key in name), None)


def mfu(flops: float, seconds: float, devices: int = 1, peak: float | None = None) -> float | None:
    """Achieved model FLOP/s over the peak of `devices` devices; None where the peak is unknown."""
    peak = peak if peak is not None else peak_flops()
    if peak is None or seconds <= 0:
        return None
    return flops / seconds / (peak * devices)


def vision_tokens(config, batch: dict) -> int:
    """Tokens the vision tower processes for a collated batch's frames (`config`: the model's config)."""
    pixels = batch["frame_pixel_values"]
    if config.model_type != "llava_next":
        return int(pixels.shape[0])  # Qwen2-VL: one row per vision patch
    vision = config.vision_config
    per_crop = (vision.image_size // vision.patch_size) ** 2 + 1
    if "frame_image_sizes" not in batch:  # single-tile mode: one crop per frame
        return int(pixels.shape[0] * per_crop)
    crops = sum(image_size_to_num_patches(size, config.image_grid_pinpoints, vision.image_size)
                for size in batch["frame_image_sizes"].tolist())
    return int(crops * per_crop)
