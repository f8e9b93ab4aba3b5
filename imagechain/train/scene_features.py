"""Scene visuals: every frame of a scene through the vision tower and projector, then one visual per
scene, placed at that scene's image positions in the input embeddings (the paper's section 3.2).

A conversation is tokenised with one representative frame per scene (imagechain.data.render), so each
scene already has the image-token run of one image. Here the scene's frames go through the model's
own public `get_image_features` (tower, projector, and LLaVA-NeXT's any-resolution packing), the
per-patch mean over the frames is taken, and the result replaces the embeddings at those positions.
The frames of a scene share one size, so every frame yields the same number of rows.

`scene_visual` modes (imagechain.data.render.SCENE_VISUALS, frames chosen by `select_frames`):
- `mean`: every scene is the mean over its frames (the paper's V-bar). Default.
- `last`: context scenes as `mean`; the target scene (the last placeholder) is its last frame only,
  as the public LLaVA training code does.
- `first`: every scene is its first frame only, as the public Qwen code does.

    model = SceneChainModel(peft_model)          # what the trainer prepares with accelerate
    out = model(**batch)                         # batch from imagechain.train.data.Collator
    out.loss

`image_mode` (imagechain.data.image_modes): `native` encodes each frame the model's own way
(LLaVA-NeXT's any-resolution tiles through `get_image_features`); `single-tile` (LLaVA-NeXT only,
`SingleTileFamily`) encodes one centre-cropped tile per frame through the vision tower and
projector alone: the public ImageChain code's 576 tokens per scene, no newline token.

Supported: LLaVA-NeXT (`LlavaNextForConditionalGeneration`) and Qwen2-VL
(`Qwen2VLForConditionalGeneration`). For Qwen2-VL the multimodal RoPE positions come from the
model's public `get_rope_index` with the representative frames' `image_grid_thw`, which every frame
of the scene shares, so positions match what the model would compute from pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image
from torch import nn

from imagechain.data.image_modes import check_image_mode, single_tile
from schemas.errors import DataError

# Module names of the vision side (tower, projector, LLaVA-NeXT's newline) in both families.
VISION_PARTS = ("vision_tower", "visual", "multi_modal_projector", "image_newline")


def is_vision_parameter(name: str) -> bool:
    return any(f".{part}." in f".{name}." for part in VISION_PARTS)


class VisualFamily:
    """How one model family takes frames: which image-processor outputs, how they batch, the LM extras."""

    model_types: tuple[str, ...] = ()
    frame_keys: tuple[str, ...] = ()

    def process(self, processor, images: list[Image.Image]) -> dict[str, torch.Tensor]:
        """Frames through the processor's image processor: the tensors `get_image_features` takes."""
        out = processor.image_processor(images=images, return_tensors="pt")
        return {key: out[key] for key in self.frame_keys}

    def dummy(self, processor) -> dict[str, torch.Tensor]:
        """One blank frame: a batch without scenes still runs the vision tower (ZeRO-3 needs every rank to)."""
        return self.process(processor, [Image.new("RGB", (64, 64))])

    def collate(self, parts: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        return {key: torch.cat([part[key] for part in parts]) for key in self.frame_keys}

    def encode(self, model, frame_inputs: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """One (tokens, hidden) tensor per frame, through the model's public get_image_features."""
        return list(model.get_image_features(**frame_inputs, return_dict=True).pooler_output)

    def language_kwargs(self, model, input_ids, attention_mask, extras: dict) -> dict:
        """Whatever the language model needs besides inputs_embeds and attention_mask."""
        return {}


class LlavaNextFamily(VisualFamily):
    model_types = ("llava_next",)
    frame_keys = ("pixel_values", "image_sizes")

    def collate(self, parts):
        # pixel_values is (frames, patches, C, H, W) with patches padded per call; pad to one count.
        # get_image_features drops the padding again using image_sizes.
        most = max(part["pixel_values"].shape[1] for part in parts)
        padded = [nn.functional.pad(p["pixel_values"], (0, 0, 0, 0, 0, 0, 0, most - p["pixel_values"].shape[1]))
                  for p in parts]
        return {"pixel_values": torch.cat(padded), "image_sizes": torch.cat([p["image_sizes"] for p in parts])}


class SingleTileFamily(VisualFamily):
    """LLaVA-NeXT with one tile per frame: tower and projector only, as the public ImageChain code encodes."""

    model_types = ("llava_next",)
    frame_keys = ("pixel_values",)

    def process(self, processor, images):
        tiles = [single_tile(image, processor) for image in images]
        # A tile-sized image's first patch is the tile itself (LLaVA-NeXT's base image); the
        # high-resolution patches after it are not used in this mode.
        pixels = processor.image_processor(images=tiles, return_tensors="pt")["pixel_values"]
        return {"pixel_values": pixels[:, 0]}

    def encode(self, model, frame_inputs):
        inner = model.model  # LlavaNextModel: vision_tower, multi_modal_projector
        config = model.config
        pixels = frame_inputs["pixel_values"].to(inner.vision_tower.dtype)
        hidden = inner.vision_tower(pixels, output_hidden_states=True).hidden_states
        layer = config.vision_feature_layer
        selected = (hidden[layer] if isinstance(layer, int)
                    else torch.cat([hidden[index] for index in layer], dim=-1))
        if config.vision_feature_select_strategy == "default":
            selected = selected[:, 1:]  # the CLS token
        return list(inner.multi_modal_projector(selected))


class Qwen2VLFamily(VisualFamily):
    model_types = ("qwen2_vl",)
    frame_keys = ("pixel_values", "image_grid_thw")

    def language_kwargs(self, model, input_ids, attention_mask, extras):
        # Positions for M-RoPE from the token types and the representative frames' grids.
        position_ids, _ = model.model.get_rope_index(
            input_ids, mm_token_type_ids=extras["mm_token_type_ids"], image_grid_thw=extras["image_grid_thw"],
            attention_mask=attention_mask)
        return {"position_ids": position_ids}


FAMILIES = {model_type: family() for family in (LlavaNextFamily, Qwen2VLFamily) for model_type in family.model_types}


def family_of(config, image_mode: str = "native") -> VisualFamily:
    """The family of a model config (or a model) under `image_mode`; DataError for what is not supported."""
    config = getattr(config, "config", config)
    if config.model_type not in FAMILIES:
        raise DataError(f"model type {config.model_type!r} is not supported for scene visuals; "
                        f"supported: {', '.join(FAMILIES)}")
    check_image_mode(image_mode, config.model_type)
    return SingleTileFamily() if image_mode == "single-tile" else FAMILIES[config.model_type]


def reduce_frames(frame_features: Sequence[torch.Tensor], frames_per_scene: Sequence[int]) -> list[torch.Tensor]:
    """Per-patch mean over each scene's consecutive frames: frame features grouped by frames_per_scene."""
    if sum(frames_per_scene) != len(frame_features):
        raise DataError(f"{len(frame_features)} frame features for {sum(frames_per_scene)} frames")
    scenes, start = [], 0
    for count in frames_per_scene:
        group = frame_features[start:start + count]
        shapes = {tuple(f.shape) for f in group}
        if len(shapes) != 1:
            raise DataError(f"frames of one scene give different feature shapes {sorted(shapes)}; "
                            "a scene's frames must share one size")
        scenes.append(group[0] if count == 1 else torch.stack(list(group)).mean(0))
        start += count
    return scenes


def place_scene_features(inputs_embeds: torch.Tensor, input_ids: torch.Tensor, image_token_id: int,
                         scene_features: Sequence[torch.Tensor]) -> torch.Tensor:
    """inputs_embeds with the image-token positions (row-major) filled by the scene features in order."""
    mask = input_ids == image_token_id
    features = torch.cat(list(scene_features)).to(inputs_embeds.device, inputs_embeds.dtype)
    if int(mask.sum()) != features.shape[0]:
        raise DataError(f"{int(mask.sum())} image tokens in the batch but {features.shape[0]} scene feature rows")
    return inputs_embeds.masked_scatter(mask.unsqueeze(-1).expand_as(inputs_embeds), features)


def scene_visuals(model, family: VisualFamily, frame_inputs: dict,
                  frames_per_scene: Sequence[int]) -> list[torch.Tensor]:
    """Every frame through the vision tower and projector, then one visual per scene."""
    return reduce_frames(family.encode(model, frame_inputs), frames_per_scene)


def base_model(model):
    """The transformers model under a peft wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


class SceneChainModel(nn.Module):
    """The model as training sees it: token ids and frames in, scene visuals placed, loss out.

    All of one step's graph runs inside this module's forward, so FSDP and DeepSpeed ZeRO-3 see the
    vision tower, projector and language model used inside the root module's forward, and every
    rank runs the vision tower every step (a batch without scenes encodes one blank frame).
    """

    def __init__(self, model: nn.Module, image_mode: str = "native"):
        super().__init__()
        self.model = model
        self.family = family_of(base_model(model).config, image_mode)
        # FSDP's transformer-based auto-wrap reads this from the module it wraps.
        self._no_split_modules = getattr(base_model(model), "_no_split_modules", None)
        self._vision_trains: bool | None = None  # decided on the first forward, after LoRA is in place

    def _vision_trainable(self) -> bool:
        if self._vision_trains is None:
            self._vision_trains = any(param.requires_grad for name, param in self.model.named_parameters()
                                      if is_vision_parameter(name))
        return self._vision_trains

    @property
    def image_token_id(self) -> int:
        return base_model(self.model).config.image_token_id

    def forward(self, input_ids, attention_mask, frames_per_scene, scene_token_counts, labels=None, **extras):
        hf = base_model(self.model)
        frame_inputs = {key.removeprefix("frame_"): value for key, value in extras.items() if key.startswith("frame_")}
        inputs_embeds = hf.get_input_embeddings()(input_ids)
        # A frozen tower and projector need no autograd record (LoRA on them would turn it back on).
        with torch.set_grad_enabled(torch.is_grad_enabled() and self._vision_trainable()):
            features = self.family.encode(hf, frame_inputs)
        if frames_per_scene.numel() == 0:
            # Nothing to place, but the tower ran (under ZeRO-3 every rank must gather its weights);
            # its output joins at zero weight so the step's result depends on it the same way on every rank.
            inputs_embeds = inputs_embeds + 0.0 * sum(f.sum() for f in features).to(inputs_embeds.dtype)
        else:
            scenes = reduce_frames(features, frames_per_scene.tolist())
            _check_counts(scenes, scene_token_counts.tolist())
            inputs_embeds = place_scene_features(inputs_embeds, input_ids, self.image_token_id, scenes)
        kwargs = self.family.language_kwargs(hf, input_ids, attention_mask, extras)
        return self.model(inputs_embeds=inputs_embeds, attention_mask=attention_mask, labels=labels,
                          use_cache=False, **kwargs)


def _check_counts(scenes: list[torch.Tensor], token_counts: list[int]) -> None:
    rows = [int(scene.shape[0]) for scene in scenes]
    if rows != token_counts:
        raise DataError(f"scene visuals have {rows} rows but the text has {token_counts} image tokens per scene")
