"""The trained adapter as a deliverable: peft files, a model card, and optionally a merged model.

    save_adapter(accelerator, model, "out/adapter", config, summary)   # every rank calls it
    merge_adapter("tiny:llava-next", "out/adapter", "out/merged")       # main process only

The adapter folder loads with `PeftModel.from_pretrained(base, "out/adapter")`; its README.md says
what it was trained on and how, and imagechain_train.json holds the training settings for
`imagechain eval`, which checks that it shows scenes the way the adapter saw them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import torch
from peft import PeftModel
from transformers import AutoConfig, AutoModelForImageTextToText

from agents.backends.hf_loading import load_processor
from agents.backends.tiny_models import resolve_model_id
from imagechain.train.config import TRAIN_SETTINGS_FILE, TrainConfig

PAPER = ("ImageChain: Advancing Sequential Image-to-Text Reasoning in Multimodal Large Language Models "
         "(Sánchez Villegas, Ziegler and Elliott, 2025)")


def save_adapter(accelerator, model, directory: str | Path, config: TrainConfig, summary: Mapping[str, object]) -> Path:
    """Adapter weights + adapter_config.json + README.md; collective under FSDP / ZeRO-3, so call on every rank."""
    directory = Path(directory)
    # get_state_dict gathers sharded weights (FSDP, ZeRO-3); keys are the SceneChainModel's ("model.<peft key>").
    state = accelerator.get_state_dict(model)
    if accelerator.is_main_process:
        peft_model = accelerator.unwrap_model(model).model
        state = {key.removeprefix("model."): value for key, value in state.items()}
        peft_model.save_pretrained(str(directory), state_dict=state)
        (directory / "README.md").write_text(model_card(config, summary))
        (directory / TRAIN_SETTINGS_FILE).write_text(json.dumps(config.to_dict(), indent=1) + "\n")
    accelerator.wait_for_everyone()
    return directory


def model_card(config: TrainConfig, summary: Mapping[str, object]) -> str:
    """A README for the adapter: base, data, settings, results of the run, and how to load it."""
    rows = "\n".join(f"| `{key}` | `{value}` |" for key, value in config.to_dict().items())
    results = "\n".join(f"- {key.replace('_', ' ')}: {value}" for key, value in summary.items())
    return f"""---
library_name: peft
base_model: {config.model}
tags: [imagechain, lora, next-scene-description, vischain]
---

# ImageChain LoRA adapter for `{config.model}`

LoRA adapter (r={config.lora_r}, alpha={config.lora_alpha}) trained with `imagechain train` on
multi-turn image chains: each scene of a story is one user turn carrying the scene's visual
({config.scene_visual!r}: {_visual_text(config.scene_visual)}; image mode {config.image_mode!r})
and one assistant turn with its description; the last scene's description is the target.
Method: {PAPER}.

- Data: {", ".join(config.data)} (bucket {config.bucket}, split {config.split}, variant {config.variant}).
- Loss: {config.loss!r} ({_loss_text(config.loss)}); image positions and padding never count.

## Results of this run

{results}

## Settings

| field | value |
|---|---|
{rows}

## Use

```python
from peft import PeftModel
from transformers import AutoModelForImageTextToText

base = AutoModelForImageTextToText.from_pretrained("{config.model}")
model = PeftModel.from_pretrained(base, "path/to/this/folder")
```

Generation must build scene visuals the same way: `imagechain eval` with `scene_visual: {config.scene_visual}`
and `image_mode: {config.image_mode}` does (imagechain.eval.scene_generator); plain pixel inputs give the
model one frame per scene instead of the mean.
"""


def _visual_text(mode: str) -> str:
    return {"mean": "per-patch mean of all frames' projected features",
            "last": "mean for context scenes, last frame for the target scene",
            "first": "first frame of each scene"}[mode]


def _loss_text(mode: str) -> str:
    return {"all-text": "every text token, the paper's equation 2", "assistant": "every assistant turn",
            "final": "the target turn only"}[mode]


def merge_adapter(base_model: str, adapter_dir: str | Path, output_dir: str | Path, dtype: str = "auto") -> Path:
    """Load the base afresh (on CPU), merge the adapter into its weights, save model and processor."""
    path = resolve_model_id(base_model)
    config = AutoConfig.from_pretrained(path)
    # "auto": the dtype the checkpoint was saved in.
    base = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype if dtype == "auto" else getattr(torch, dtype))
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    output_dir = Path(output_dir)
    merged.save_pretrained(str(output_dir))
    load_processor(path, config.model_type).save_pretrained(str(output_dir))
    return output_dir
