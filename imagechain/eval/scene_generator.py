"""Generation from scene features: the evaluation counterpart of training's scene visuals.

A chat backend takes one image file per placeholder. This in-process generator takes, per
placeholder, the list of frames behind it (`{"type": "image", "frames": [path, ...]}`), encodes
every frame with the same code training uses (imagechain.train.scene_features: the model's vision
tower and projector, in the recipe's `image_mode`), takes the per-patch mean over the listed
frames, and hands the result to `generate` as pre-encoded image features (`mm_encoder_outputs`),
so the text side keeps its ordinary token ids and the model places the features itself. A
placeholder with one frame is exactly what the model would compute from that image.

The prompt text is the model's chat template with one image placeholder per scene, tokenised as
the processor does (native mode: the processor expands each placeholder for the scene's first
frame; single-tile: the base grid). A prompt that fills the context is refused (ContextOverflow),
never cut. Sampling follows the chat backends: temperature 0 is greedy, a seed is applied per call.

    generator = SceneFeatureGenerator("tiny:llava-next", adapter="runs/x/adapter", image_mode="single-tile")
    result = await generator.chat([{"role": "user", "content": [
        {"type": "image", "frames": ["f1.png", "f2.png"]}, {"type": "text", "text": "What is happening?"}]}])
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from pathlib import Path

import torch
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.utils import logging as hf_logging

from agents.backends.chat import BackendError, ChatResult, ContextOverflow, ModelNotFound, SamplingParams, Usage
from agents.backends.hf_loading import load_model
from agents.backends.tiny_models import resolve_model_id
from imagechain.data.image_modes import base_grid_tokens, expand_image_tokens
from imagechain.data.render import image_token
from imagechain.data.story import open_frame
from imagechain.train.scene_features import base_model, family_of, reduce_frames
from schemas.errors import DataError

# Frames encoded per vision-tower call: a C7 story at 25 frames per scene is 175 frames, too many
# for one batch of any-resolution tiles on a GPU.
FRAME_CHUNK = 32
# Sampling draws from torch's one process-wide generator: two models sampling in two threads would
# interleave their draws, so seeded sampling holds this lock from seed to last token.
_SAMPLING = threading.Lock()


class SceneFeatureGenerator:
    backend = "transformers"
    takes_scene_frames = True
    """Image parts carry `frames` (a scene's frame files), not one `path`."""

    def __init__(self, model: str, adapter: str | None = None, device: str = "cpu", image_mode: str = "native"):
        hf_logging.disable_progress_bar()
        self.model_id = f"{model}+{adapter}" if adapter else model
        self.image_mode = image_mode
        self._loaded = load_model(resolve_model_id(model), device=device)
        if not self._loaded.is_vision:
            raise DataError(f"model {model!r} is not a vision-language model")
        config = self._loaded.model.config
        self.family = family_of(config, image_mode)
        self.max_length = int(getattr(config, "text_config", config).max_position_embeddings)
        if adapter:
            self._loaded.model = _with_adapter(self._loaded.model, adapter)
        self._lock = threading.Lock()

    @property
    def model(self):
        return self._loaded.model

    @property
    def processor(self):
        return self._loaded.processor

    async def chat(self, messages: list[dict], *, schema: dict | None = None,
                   params: SamplingParams = SamplingParams()) -> ChatResult:
        if schema is not None:
            raise BackendError("the scene-feature generator writes free text; it takes no schema")
        return await asyncio.to_thread(self.generate, messages, params)

    async def aclose(self) -> None:
        return None

    def encode_text(self, messages: list[dict]) -> tuple[dict, list[list[str]]]:
        """The prompt's token tensors (batch of one) and, per placeholder, its frame files."""
        scenes = [list(part["frames"]) for m in messages for part in m["content"] if part["type"] == "image"]
        hf_messages = [{"role": m["role"], "content": [{"type": "image"} if p["type"] == "image" else p
                                                       for p in m["content"]]} for m in messages]
        processor, tokenizer = self.processor, self.processor.tokenizer
        text = processor.apply_chat_template(hf_messages, add_generation_prompt=True, tokenize=False)
        # As apply_chat_template(tokenize=True) does: no second BOS when the template writes one.
        add_special = not (tokenizer.bos_token and text.startswith(tokenizer.bos_token))
        if self.image_mode == "single-tile":
            expanded = expand_image_tokens(text, image_token(processor), base_grid_tokens(processor))
            inputs = tokenizer([expanded], return_tensors="pt", add_special_tokens=add_special)
        else:
            firsts = [open_frame(frames[0]) for frames in scenes]
            inputs = processor(text=[text], images=firsts or None, return_tensors="pt", add_special_tokens=add_special)
        # Pixels are not needed: the features come from every frame below. Qwen2-VL keeps its grids
        # and token types for the M-RoPE positions.
        kept = {key: inputs[key] for key in ("input_ids", "attention_mask", "image_grid_thw", "mm_token_type_ids")
                if key in inputs}
        return kept, scenes

    def scene_features(self, scenes: list[list[str]]) -> list[torch.Tensor]:
        """One feature tensor per placeholder: the per-patch mean of its frames' features."""
        frames = [frame for scene in scenes for frame in scene]
        features: list[torch.Tensor] = []
        with torch.inference_mode():
            for start in range(0, len(frames), FRAME_CHUNK):
                images = [open_frame(frame) for frame in frames[start:start + FRAME_CHUNK]]
                inputs = {key: value.to(self.model.device)
                          for key, value in self.family.process(self.processor, images).items()}
                features += self.family.encode(base_model(self.model), inputs)
        return reduce_frames(features, [len(scene) for scene in scenes])

    def generate(self, messages: list[dict], params: SamplingParams) -> ChatResult:
        inputs, scenes = self.encode_text(messages)
        length = int(inputs["input_ids"].shape[-1])
        if length >= self.max_length:  # not one token left to generate
            raise ContextOverflow(length, self.max_length)
        tokenizer = self.processor.tokenizer
        kwargs = dict(max_new_tokens=params.max_tokens, do_sample=params.temperature > 0,
                      pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
        if params.temperature > 0:
            kwargs.update(temperature=params.temperature, top_p=params.top_p)
        inputs = {key: value.to(self.model.device) for key, value in inputs.items()}
        sampling = _SAMPLING if params.temperature > 0 else contextlib.nullcontext()
        with self._lock, sampling:
            if scenes:
                features = self.scene_features(scenes)
                _check_rows(features, inputs["input_ids"][0], base_model(self.model).config.image_token_id)
                kwargs["mm_encoder_outputs"] = {"image": BaseModelOutputWithPooling(pooler_output=features)}
            if params.seed is not None:
                torch.manual_seed(params.seed)
            with torch.inference_mode():
                output = self.model.generate(**inputs, **kwargs)
        new_tokens = output[0, length:]
        text = tokenizer.decode(new_tokens, skip_special_tokens=True)
        completion = int((new_tokens != kwargs["pad_token_id"]).sum())
        return ChatResult(text=text, model=self.model_id, usage=Usage(length, completion))


def _check_rows(features: list[torch.Tensor], input_ids: torch.Tensor, image_token_id: int) -> None:
    rows, tokens = sum(int(f.shape[0]) for f in features), int((input_ids == image_token_id).sum())
    if rows != tokens:
        raise DataError(f"scene features have {rows} rows for {tokens} image tokens; "
                        "a scene's frames must share one size")


def _with_adapter(model, adapter: str):
    if not (Path(adapter) / "adapter_config.json").is_file():
        raise ModelNotFound(f"adapter: no adapter_config.json in {adapter} (expected a folder saved by peft)")
    from peft import PeftModel  # here: peft is only needed when an adapter is applied

    return PeftModel.from_pretrained(model, adapter).eval()
