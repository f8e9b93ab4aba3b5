"""How one image becomes image tokens: the model's own processing, or LLaVA-NeXT's single 576-token tile.

`native` (default): the processor's own image handling. For LLaVA-NeXT that is any-resolution
tiling: a base tile of the whole image plus high-resolution tiles and newline tokens, so one 16:9
frame at 336 px costs about 1,950 tokens (`anyres_tokens` computes it) and a C3+ story or an
MLLM-ICL prompt overflows a 4,096-token context. For Qwen2-VL it is its dynamic resolution.

`single-tile` (LLaVA-NeXT only): what the public ImageChain code does (`IMAGE_TOKEN_LEN = 576`,
`mm_patch_merge_type: flat`, plain CLIP preprocessing): the frame is resized so its short side is
the tile size, centre-cropped to a square tile, and encoded by the vision tower and projector
alone, with no high-resolution tiles and no newline token. One image costs the base grid:
(336 / 14)^2 = 576 tokens for LLaVA-v1.6-Vicuna-7B (`base_grid_tokens`).

The text side expands each image placeholder to that many image tokens (`expand_image_tokens`);
the features come from imagechain.train.scene_features (`SingleTileFamily`), which both
training and evaluation use, so an adapter is evaluated on the visuals it was trained on.

    base_grid_tokens(processor)          # 576 for llava-hf/llava-v1.6-vicuna-7b-hf
    tile = single_tile(frame, processor)  # a PIL image of tile size
"""

from __future__ import annotations

from PIL import Image

from schemas.errors import DataError

IMAGE_MODES = ("native", "single-tile")
SINGLE_TILE_MODEL_TYPES = ("llava_next",)


def check_image_mode(image_mode: str, model_type: str | None = None) -> None:
    """DataError for an unknown mode, or for single-tile on a model that is not LLaVA-NeXT."""
    if image_mode not in IMAGE_MODES:
        raise DataError(f"image_mode: unknown value {image_mode!r}; known: {', '.join(IMAGE_MODES)}")
    if image_mode == "single-tile" and model_type is not None and model_type not in SINGLE_TILE_MODEL_TYPES:
        raise DataError(f"image_mode single-tile is for LLaVA-NeXT models; this model is {model_type!r} "
                        "(use image_mode: native)")


def tile_side(processor) -> int:
    """The side of the square tile the vision tower takes (336 for LLaVA-v1.6)."""
    crop = processor.image_processor.crop_size
    height, width = crop["height"], crop["width"]
    if height != width:
        raise DataError(f"image_mode single-tile needs a square tile; this processor crops to {width}x{height}")
    return int(height)


def base_grid_tokens(processor) -> int:
    """Image tokens of one single-tile image: the vision tower's patch grid, counted as the processor does."""
    side = tile_side(processor) // processor.patch_size
    tokens = side * side + processor.num_additional_image_tokens
    # The "default" strategy drops the CLS token that num_additional_image_tokens counts.
    return tokens - 1 if processor.vision_feature_select_strategy == "default" else tokens


def anyres_tokens(processor, width: int, height: int) -> int:
    """Image tokens the processor gives one width x height image in native (any-resolution) mode."""
    side = tile_side(processor)
    return int(processor._get_number_of_features(height, width, side, side))


def single_tile(image: Image.Image, processor) -> Image.Image:
    """The image as CLIP preprocesses it: short side resized to the tile size, then a centre square."""
    side = tile_side(processor)
    image = image if image.mode == "RGB" else image.convert("RGB")
    scale = side / min(image.size)
    width, height = max(side, round(image.width * scale)), max(side, round(image.height * scale))
    resized = image.resize((width, height), Image.Resampling.BICUBIC)
    left, top = (width - side) // 2, (height - side) // 2
    return resized.crop((left, top, left + side, top + side))


def expand_image_tokens(text: str, image_token: str, count: int) -> str:
    """Each image placeholder in `text` as `count` image tokens (what the processor does in native mode)."""
    return text.replace(image_token, image_token * count)
