"""Training progress: a rich progress bar, a log line every N steps, and metrics.jsonl.

Every rank feeds its own numbers; at a log step they are reduced across ranks (a collective, so
every rank calls `step` for every optimizer step), and only the main process prints and writes.

    log = TrainLog(accelerator, "out/metrics.jsonl", total_steps=120, every=10, flops_of=...)
    log.start(done_steps=0)
    log.add(loss=2.3, tokens=812, sequence=410, vision_tokens=9000)   # per forward pass
    log.step(step=1, epoch=0, lr=2e-5)                     # per optimizer step
    log.close()
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path
from typing import NotRequired, TypedDict

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from imagechain.train.mfu import mfu


class TrainRecord(TypedDict):
    """One line of metrics.jsonl: the numbers of the optimizer steps since the previous line."""

    step: int
    epoch: int
    loss: float
    """Mean loss over every rank's forward passes."""
    lr: float
    """The learning rate the step used."""
    tokens_per_s: float
    """Attended language-model tokens per second, all ranks together."""
    seconds: float
    mfu: NotRequired[float | None]
    """Model FLOPs utilisation, on CUDA devices only."""


class TrainLog:
    def __init__(self, accelerator, path: str | Path, total_steps: int, every: int, flops_of=None,
                 console: Console | None = None):
        self.accelerator, self.path, self.total, self.every = accelerator, Path(path), total_steps, every
        self.flops_of = flops_of  # (lm_tokens, longest sequence, vision_tokens) -> model FLOPs, or None
        self.main = accelerator.is_main_process
        self.progress = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                                 console=console, disable=not self.main)
        self.history: list[TrainRecord] = []
        self._reset()

    def _reset(self) -> None:
        self.losses, self.tokens, self.vision, self.longest = [], 0, 0, 0
        self.window_start = time.perf_counter()

    @contextmanager
    def paused(self):
        """Time spent inside (checkpointing) does not count towards tokens/s and MFU."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.window_start += time.perf_counter() - start

    def start(self, done_steps: int) -> None:
        self.progress.start()
        self.task = self.progress.add_task("train", total=self.total, completed=done_steps, info="")
        self._reset()

    def add(self, loss: float, tokens: int, sequence: int, vision_tokens: int = 0) -> None:
        """One forward pass of this rank: its loss, attended tokens, padded length and vision tokens."""
        self.losses.append(loss)
        self.tokens += tokens
        self.vision += vision_tokens
        self.longest = max(self.longest, sequence)

    def step(self, step: int, epoch: int, lr: float) -> TrainRecord | None:
        """After optimizer step `step`: advance the bar; at a log step reduce, print and record a line."""
        self.progress.update(self.task, completed=step)
        if step % self.every and step != self.total:
            return None
        record = self._record(step, epoch, lr)
        if self.main:
            self.history.append(record)
            with self.path.open("a") as out:
                out.write(json.dumps(record) + "\n")
            self.progress.update(self.task, info=f"loss {record['loss']:.4f}")
            self.progress.console.print(_line(record))
        self._reset()
        return record

    def _record(self, step: int, epoch: int, lr: float) -> TrainRecord:
        seconds = time.perf_counter() - self.window_start
        device = self.accelerator.device
        local = torch.tensor([sum(self.losses), len(self.losses), self.tokens, self.vision], dtype=torch.float64)
        total = self.accelerator.reduce(local.to(device), reduction="sum").cpu()
        loss = float(total[0] / max(total[1], 1))
        record: TrainRecord = {"step": step, "epoch": epoch, "loss": round(loss, 6), "lr": lr,
                               "tokens_per_s": round(float(total[2]) / seconds, 2), "seconds": round(seconds, 3)}
        if self.flops_of is not None:
            flops = self.flops_of(float(total[2]), self.longest, float(total[3]))
            value = mfu(flops, seconds, devices=self.accelerator.num_processes)
            record["mfu"] = None if value is None else round(value, 4)
        return record

    def close(self) -> None:
        self.progress.stop()


def _line(record: TrainRecord) -> str:
    mfu = record.get("mfu")
    extra = f"  mfu {mfu:.1%}" if mfu is not None else ""
    return (f"step {record['step']:>6}  epoch {record['epoch'] + 1}  loss {record['loss']:.4f}  "
            f"lr {record['lr']:.2e}  {record['tokens_per_s']:.0f} tok/s{extra}")
