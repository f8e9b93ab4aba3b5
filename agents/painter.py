"""Painter agent: a diffusion model paints an image from a prompt when retrieval fails.

The prompt is written by the paint-prompt agent (agents/paint_prompt.py) or, as an option, is the
fixed `template_prompt`. Painted images are saved by content hash and marked `synthetic` in
provenance with the model id, seed and prompt, so a reader of the dataset can always tell them
from retrieved photos.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import threading
from dataclasses import dataclass
from pathlib import Path

import imagehash

from agents.backends.tiny_models import resolve_model_id
from schemas.durable_files import write_atomically


def template_prompt(description: str) -> str:
    """The fixed prompt of `generate.paint_prompt: template`: no model call, the same words every round."""
    return f"a clear photo of {description}"


@dataclass(frozen=True)
class Painted:
    path: str
    sha256: str
    model: str
    seed: int
    prompt: str
    phash: str
    """imagehash.phash of the painted image, as the fetcher records for retrieved ones."""


class Painter:
    def __init__(self, model_id: str, *, device: str = "cpu", steps: int = 25, size: int = 512,
                 guidance_scale: float = 7.5):
        self.model_id = model_id
        self.device = device
        self.steps = steps
        self.size = size
        self.guidance_scale = guidance_scale
        self._pipe = None
        self._lock = threading.Lock()

    def _pipeline(self):
        if self._pipe is None:  # loaded on first use: a run whose images are all found never pays for it
            # here: torch and diffusers load with the first painted image, not with the run
            import torch
            from diffusers import DiffusionPipeline
            from diffusers.utils import logging as diffusers_logging

            diffusers_logging.disable_progress_bar()
            dtype = torch.float16 if self.device.startswith("cuda") else torch.float32
            pipe = DiffusionPipeline.from_pretrained(resolve_model_id(self.model_id), torch_dtype=dtype)
            if hasattr(pipe, "safety_checker"):
                pipe.safety_checker = None
            pipe.set_progress_bar_config(disable=True)
            self._pipe = pipe.to(self.device)
        return self._pipe

    async def paint(self, prompt: str, seed: int, out_dir: Path) -> Painted:
        """The image the model paints from `prompt` with `seed`, saved in `out_dir` by its SHA-256."""
        return await asyncio.to_thread(self._paint, prompt, seed, Path(out_dir))

    def _paint(self, prompt: str, seed: int, out_dir: Path) -> Painted:
        import torch  # here: loading this module must not load torch (the painter may never be used)

        with self._lock:
            pipe = self._pipeline()
            generator = torch.Generator(device="cpu").manual_seed(seed)
            image = pipe(prompt, num_inference_steps=self.steps, height=self.size, width=self.size,
                         guidance_scale=self.guidance_scale, generator=generator).images[0]
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="PNG")
        data = buffer.getvalue()
        sha = hashlib.sha256(data).hexdigest()
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{sha}.png"
        if not path.exists():
            write_atomically(path, data)
        return Painted(path=str(path), sha256=sha, model=self.model_id, seed=seed, prompt=prompt,
                       phash=str(imagehash.phash(image.convert("RGB"))))
