"""Epoch checkpoints: adapter, optimizer, scheduler, RNG states and the epoch, through accelerate.

Layout under the run's output folder:

    checkpoints/epoch-1/            one per finished epoch
        model.safetensors           the trainable (LoRA) weights only, under DDP / one device
        optimizer.bin scheduler.bin random_states_<rank>.pkl    accelerate's own files
        (FSDP / DeepSpeed ZeRO-3 write their sharded model and optimizer files instead)
        trainer_state.json          epoch, global step, the config; written last
    checkpoints/epoch-2.partial/    a save that was cut off: never resumed from

`accelerator.save_state` does the saving, so every distributed mode keeps its own format; a
save hook (accelerate's public `register_save_state_pre_hook`) keeps only the trainable weights
of the frozen base model, and the load hook checks that exactly those come back.

    register_adapter_hooks(accelerator)
    save_checkpoint(accelerator, "out", {"epoch": 1, "global_step": 12, "config": {...}})
    state = load_checkpoint(accelerator, latest_checkpoint("out"))
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import TypedDict

from accelerate.utils import DistributedType
from safetensors import safe_open

from schemas.errors import DataError

CHECKPOINTS = "checkpoints"
STATE_FILE = "trainer_state.json"
PARTIAL = ".partial"
MODEL_FILE = "model.safetensors"


class TrainerState(TypedDict):
    """The state file of a checkpoint: where training stands, and the settings it ran with."""

    epoch: int
    """Epochs finished."""
    global_step: int
    """Optimizer steps taken."""
    config: dict
    """TrainConfig.to_dict() of the run (resuming checks the settings that must not change)."""


def checkpoint_dir(output_dir: str | Path, epoch: int) -> Path:
    return Path(output_dir) / CHECKPOINTS / f"epoch-{epoch}"


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The checkpoint of the highest finished epoch (one with its state file), or None."""
    root = Path(output_dir) / CHECKPOINTS
    found = []
    for folder in root.glob("epoch-*") if root.is_dir() else ():
        match = re.fullmatch(r"epoch-(\d+)", folder.name)
        if match and (folder / STATE_FILE).is_file():
            found.append((int(match.group(1)), folder))
    return max(found)[1] if found else None


def _trainable_names(model) -> set[str]:
    return {name for name, param in model.named_parameters() if param.requires_grad}


def register_adapter_hooks(accelerator) -> None:
    """Save only trainable weights (where accelerate hands the weights over), and check them on load."""

    def keep_trainable(models, weights, output_dir):
        for index, (model, state) in enumerate(zip(models, weights)):
            names = _trainable_names(model)
            weights[index] = {key: value for key, value in state.items() if key in names}

    def check_trainable(models, input_dir):
        file = Path(input_dir) / MODEL_FILE
        if not models or not file.is_file():
            return  # FSDP / DeepSpeed: their own loaders check their own files
        with safe_open(str(file), framework="pt") as saved:
            keys = set(saved.keys())
        expected = _trainable_names(models[0])
        if keys != expected:
            missing, extra = sorted(expected - keys)[:3], sorted(keys - expected)[:3]
            raise DataError(f"{file}: checkpoint weights do not match this model's trainable weights "
                            f"(missing e.g. {missing}, unexpected e.g. {extra}); was the LoRA config changed?")

    accelerator.register_save_state_pre_hook(keep_trainable)
    accelerator.register_load_state_pre_hook(check_trainable)


def save_checkpoint(accelerator, output_dir: str | Path, state: TrainerState) -> Path:
    """Everything needed to resume after epoch state["epoch"]; written to a .partial folder, then renamed."""
    final = checkpoint_dir(output_dir, state["epoch"])
    partial = final.with_name(final.name + PARTIAL)
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(final, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (partial / STATE_FILE).write_text(json.dumps(state, indent=1, default=str))
        partial.rename(final)
    accelerator.wait_for_everyone()
    return final


def read_state(folder: str | Path) -> TrainerState:
    """The trainer state saved with a checkpoint (epoch, global_step, config)."""
    path = Path(folder) / STATE_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: cannot read checkpoint state: {err}") from None


def load_checkpoint(accelerator, folder: str | Path) -> TrainerState:
    """Restore the prepared model's trainable weights, optimizer, scheduler and RNG states; the saved state."""
    state = read_state(folder)
    # strict=False: the base weights are not in the checkpoint (the load hook checks the LoRA ones are).
    # DeepSpeed's loader takes no such argument; it restores its own complete files.
    kwargs = {} if accelerator.distributed_type == DistributedType.DEEPSPEED else {"strict": False}
    accelerator.load_state(str(folder), **kwargs)
    return state
