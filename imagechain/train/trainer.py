"""The ImageChain training recipe: LoRA on a LLaVA-NeXT or Qwen2-VL model over scene-visual chains.

A plain class in the torchtune style (no trainer base class): `setup()` builds everything, `train()`
runs the epochs. It runs the same on one device and under `accelerate launch` (DDP, FSDP,
DeepSpeed ZeRO-3; configs in imagechain/accelerate/), because everything distributed goes
through accelerate: prepare, backward, clipping, reductions and save_state/load_state.

    recipe = TrainRecipe(load_config("imagechain/recipes/train/tiny-llava.yaml", ["data=[runs/eng]"]))
    recipe.setup()          # resumes from the last finished epoch in output_dir when there is one
    summary = recipe.train()

Each epoch ends with a checkpoint (imagechain.train.checkpoints); the run ends with the adapter, its
config and a model card in output_dir/adapter (and output_dir/merged with `merge: true`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from itertools import chain
from pathlib import Path
from typing import NotRequired, TypedDict

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType, set_seed
from peft import LoraConfig, get_peft_model
from rich.console import Console
from torch.utils.data import DataLoader
from transformers import AutoConfig, AutoModelForImageTextToText, get_scheduler
from transformers.utils import logging as hf_logging

from agents.backends.chat import ModelNotFound
from agents.backends.hf_loading import load_processor
from agents.backends.tiny_models import resolve_model_id
from imagechain.data.sources import iter_stories
from imagechain.train.adapter_export import merge_adapter, save_adapter
from imagechain.train.checkpoints import (
    TrainerState,
    latest_checkpoint,
    load_checkpoint,
    read_state,
    register_adapter_hooks,
    save_checkpoint,
)
from imagechain.train.config import TrainConfig
from imagechain.train.data import ChainDataset, Collator, EpochShuffle, build_samples
from imagechain.train.mfu import ParamCounts, step_flops, vision_tokens
from imagechain.train.scene_features import SceneChainModel, family_of
from imagechain.train.train_log import TrainLog, TrainRecord
from schemas.errors import DataError


class TrainSummary(TypedDict):
    """What a finished run reports: the model card's results, output_dir/summary.json, the caller."""

    epochs: int
    optimizer_steps: int
    stories: int
    stories_skipped_too_long: int
    final_loss: float | None
    devices: int
    merged: NotRequired[str]
    """The merged model's folder, with `merge: true` (added after the model card is written)."""
    adapter: NotRequired[str]
    """The adapter folder (added after summary.json is written)."""


class TrainRecipe:
    def __init__(self, config: TrainConfig, on_epoch_end: Callable[["TrainRecipe", int], None] | None = None,
                 console: Console | None = None):
        config.validate()
        self.config, self.on_epoch_end, self.console = config, on_epoch_end, console
        self.output_dir = Path(config.output_dir)
        self.epoch, self.global_step, self.skipped = 0, 0, []

    # ---- setup -------------------------------------------------------------------------------

    def setup(self) -> "TrainRecipe":
        # Our log and progress bar say what happens; transformers' loading and saving bars would interleave.
        hf_logging.disable_progress_bar()
        self.accelerator = self._accelerator()
        set_seed(self.config.seed)
        self.resume_from = self._resume_folder()  # a mismatching checkpoint fails before any loading
        self._load_processor()
        self._load_data()  # before the weights: bad data fails in seconds, not after loading 7B
        self.model = self._wrap(self._load_weights())
        self._prepare()
        self._resume()
        return self

    def _accelerator(self) -> Accelerator:
        # Without any accelerator device, ranks started by torchrun join over gloo on the CPU.
        has_device = getattr(torch, "accelerator", None) and torch.accelerator.is_available()
        return Accelerator(mixed_precision="bf16" if self._use_bf16() else "no", cpu=not has_device,
                           gradient_accumulation_steps=self.config.gradient_accumulation_steps,
                           step_scheduler_with_optimizer=False)

    def _use_bf16(self) -> bool:
        if self.config.bf16 != "auto":
            return self.config.bf16 == "true"
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()

    def _load_processor(self) -> None:
        try:
            self.model_path = resolve_model_id(self.config.model)
            self.model_config = model_config = AutoConfig.from_pretrained(self.model_path)
        except (ModelNotFound, OSError, ValueError) as err:
            raise DataError(f"model: cannot load {self.config.model!r}: {str(err).strip().splitlines()[0]}") from None
        if not hasattr(model_config, "vision_config"):
            raise DataError(f"model: {self.config.model!r} is not a vision-language model (no vision_config)")
        try:
            family_of(model_config, self.config.image_mode)
        except DataError as err:
            raise DataError(f"model: {err}") from None
        self.processor = load_processor(self.model_path, model_config.model_type)

    def _load_weights(self):
        # Weights in bf16 where training runs in bf16; the LoRA weights stay float32 (peft's default).
        # FSDP flattens each unit into one tensor of one dtype, so there everything loads float32 and
        # FSDP's own mixed precision casts to bf16 for compute.
        fsdp = self.accelerator.distributed_type == DistributedType.FSDP
        dtype = torch.bfloat16 if self._use_bf16() and not fsdp else torch.float32
        model = AutoModelForImageTextToText.from_pretrained(self.model_path, dtype=dtype)
        model.config.use_cache = False
        return model

    def _load_data(self) -> None:
        text_config = getattr(self.model_config, "text_config", self.model_config)
        self.max_length = self.config.max_length or text_config.max_position_embeddings
        stories = chain.from_iterable(iter_stories(source, bucket=self.config.bucket, split=self.config.split)
                                      for source in self.config.data)
        self.samples, self.skipped = build_samples(stories, self.processor, self.config, self.max_length)
        if not self.samples:
            too_long = f" ({len(self.skipped)} too long)" if self.skipped else ""
            raise DataError(f"data: no {self.config.bucket} {self.config.split} stories in "
                            f"{', '.join(self.config.data)}{too_long}")

    def _wrap(self, model) -> SceneChainModel:
        for param in model.parameters():
            param.requires_grad_(False)
        if self.config.gradient_checkpointing:
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        lora = LoraConfig(r=self.config.lora_r, lora_alpha=self.config.lora_alpha,
                          lora_dropout=self.config.lora_dropout, target_modules=self.config.lora_target_modules)
        try:
            peft_model = get_peft_model(model, lora)
        except ValueError as err:
            raise DataError(f"lora_target_modules: {str(err).splitlines()[0]}") from None
        return SceneChainModel(peft_model, self.config.image_mode)

    def _prepare(self) -> None:
        family = self.model.family
        dataset = ChainDataset(self.samples, self.processor, family)
        loader = DataLoader(dataset, batch_size=self.config.per_device_batch_size,
                            sampler=EpochShuffle(len(dataset), self.config.seed), num_workers=self.config.num_workers,
                            collate_fn=Collator(family, self.processor.tokenizer.pad_token_id, self.processor))
        params = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=self.config.learning_rate, weight_decay=self.config.weight_decay)
        self._plan_steps(len(loader))
        scheduler = get_scheduler(self._scheduler_name(), optimizer=optimizer,
                                  num_warmup_steps=math.ceil(self.config.warmup_ratio * self.total_steps),
                                  num_training_steps=self.total_steps)
        # One prepare call: DeepSpeed builds its engine from model, optimizer and scheduler together.
        self.model, self.optimizer, self.loader, self.scheduler = self.accelerator.prepare(
            self.model, optimizer, loader, scheduler)
        register_adapter_hooks(self.accelerator)

    def _plan_steps(self, batches: int) -> None:
        """Optimizer steps per epoch and in all; accelerate gives each rank ceil(batches / ranks) batches."""
        per_rank = math.ceil(batches / self.accelerator.num_processes)
        self.steps_per_epoch = math.ceil(per_rank / self.config.gradient_accumulation_steps)
        self.total_steps = self.steps_per_epoch * self.config.resolved_epochs()
        if self.config.max_steps is not None:
            self.total_steps = min(self.total_steps, self.config.max_steps)

    def _scheduler_name(self) -> str:
        return {"cosine": "cosine", "linear": "linear", "constant": "constant_with_warmup"}[self.config.lr_scheduler]

    def _resume_folder(self) -> Path | None:
        """The checkpoint to resume from (None: start afresh); DataError if it was made with other settings."""
        folder = latest_checkpoint(self.output_dir) if self.config.resume else None
        if folder is None:
            return None
        saved = read_state(folder).get("config", {})
        for name in ("model", "lora_r", "lora_target_modules", "bucket", "variant", "image_mode"):
            if name in saved and saved[name] != getattr(self.config, name):
                raise DataError(f"{folder}: checkpoint was trained with {name}={saved[name]!r}, this run has "
                                f"{getattr(self.config, name)!r}; use another output_dir or resume=false")
        return folder

    def _resume(self) -> None:
        folder = self.resume_from
        if folder is None:
            return
        state = load_checkpoint(self.accelerator, folder)
        self.epoch, self.global_step = state["epoch"], state["global_step"]
        if self.epoch >= self.config.resolved_epochs() or self.global_step >= self.total_steps:
            self._print(f"{folder}: training already finished ({self.epoch} epochs, {self.global_step} steps)")
        else:
            self._print(f"resumed from {folder}: epoch {self.epoch + 1} of {self.config.resolved_epochs()} next, "
                        f"after step {self.global_step}")

    # ---- training ----------------------------------------------------------------------------

    def train(self) -> TrainSummary:
        """Run the remaining epochs; returns the run summary (also in output_dir/summary.json)."""
        self.output_dir.mkdir(parents=True, exist_ok=True)
        log = TrainLog(self.accelerator, self.output_dir / "metrics.jsonl", self.total_steps,
                       self.config.log_every, self._flops_function(), self.console)
        log.start(self.global_step)
        try:
            while self.epoch < self.config.resolved_epochs() and self.global_step < self.total_steps:
                self._train_epoch(log)
                self.epoch += 1
                with log.paused():
                    save_checkpoint(self.accelerator, self.output_dir, self._state())
                if self.on_epoch_end is not None:
                    self.on_epoch_end(self, self.epoch)
        finally:
            log.close()
        self.last_records = log.history
        return self._finish(log.history)

    def _train_epoch(self, log: TrainLog) -> None:
        self.model.train()
        self.loader.set_epoch(self.epoch)
        for batch in self.loader:
            with self.accelerator.accumulate(self.model):
                loss = self.model(**batch).loss
                self.accelerator.backward(loss)
                if self.accelerator.sync_gradients and self.config.max_grad_norm > 0:
                    self.accelerator.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)
                self.optimizer.step()
                self.optimizer.zero_grad()
            log.add(float(loss.detach()), int(batch["attention_mask"].sum()), int(batch["input_ids"].shape[1]),
                    self._vision_tokens(batch) if log.flops_of is not None else 0)
            if self.accelerator.sync_gradients:
                applied_lr = self.scheduler.get_last_lr()[0]  # the rate this optimizer step used
                self.scheduler.step()
                self.global_step += 1
                log.step(self.global_step, self.epoch, applied_lr)
                if self.global_step >= self.total_steps:
                    break

    def _vision_tokens(self, batch) -> int:
        return vision_tokens(self.model_config, batch)

    def _flops_function(self):
        """(LM tokens, sequence length, vision tokens) -> model FLOPs, on GPUs; None on CPU (no MFU there)."""
        if self.accelerator.device.type != "cuda":
            return None
        counts = ParamCounts.of(self.accelerator.unwrap_model(self.model))
        text_config = getattr(self.model_config, "text_config", self.model_config)
        return lambda tokens, sequence, vision: step_flops(counts, text_config, int(tokens), sequence, int(vision))

    def _state(self) -> TrainerState:
        return {"epoch": self.epoch, "global_step": self.global_step, "config": self.config.to_dict()}

    def _finish(self, history: list[TrainRecord]) -> TrainSummary:
        summary: TrainSummary = {
            "epochs": self.epoch, "optimizer_steps": self.global_step, "stories": len(self.samples),
            "stories_skipped_too_long": len(self.skipped), "final_loss": history[-1]["loss"] if history else None,
            "devices": self.accelerator.num_processes}
        adapter = save_adapter(self.accelerator, self.model, self.output_dir / "adapter", self.config, summary)
        if self.accelerator.is_main_process:
            if self.config.merge:
                summary["merged"] = str(merge_adapter(self.config.model, adapter, self.output_dir / "merged"))
            (self.output_dir / "summary.json").write_text(json.dumps(summary, indent=1))
        summary["adapter"] = str(adapter)
        self.accelerator.wait_for_everyone()
        return summary

    def _print(self, text: str) -> None:
        if self.accelerator.is_main_process:
            (self.console or Console(stderr=True)).print(text)
