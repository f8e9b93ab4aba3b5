"""Single-tile image mode: one image costs the base grid (576 tokens at LLaVA-v1.6's size, 16 on the tiny
LLaVA-NeXT) instead of any-resolution tiles, and the frame is the centre square of the image."""

import pytest
from PIL import Image
from transformers import LlavaNextImageProcessorPil, LlavaNextProcessor

from agents.backends.hf_loading import load_processor
from agents.backends.tiny_models import VICUNA_TEMPLATE, train_tokenizer
from imagechain.data.conversation import build_conversation
from imagechain.data.image_modes import anyres_tokens, base_grid_tokens, single_tile
from imagechain.data.render import image_token, tokenize
from imagechain.data.story import Scene, Story
from schemas.errors import DataError

# LLaVA-v1.6-Vicuna-7B's published preprocessing (llava-hf/llava-v1.6-vicuna-7b-hf): CLIP ViT-L/14 at 336 px.
LLAVA_V16_PINPOINTS = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]


@pytest.fixture(scope="module")
def processors(tiny_models):
    return {name: load_processor(str(tiny_models[name]), name.replace("-", "_")) for name in ("llava-next", "qwen2-vl")}


@pytest.fixture(scope="module")
def full_size_processor():
    """LLaVA-v1.6-Vicuna-7B's processor numbers with the tiny tokenizer: nothing downloaded."""
    images = LlavaNextImageProcessorPil(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336},
                                        image_grid_pinpoints=LLAVA_V16_PINPOINTS)
    return LlavaNextProcessor(image_processor=images, tokenizer=train_tokenizer(VICUNA_TEMPLATE), patch_size=14,
                              vision_feature_select_strategy="default", num_additional_image_tokens=1,
                              chat_template=VICUNA_TEMPLATE)


def story(scenes: int, size=(64, 48)) -> Story:
    return Story("s", "test", [Scene([Image.new("RGB", size, (30 * s, 80, 20))] * 2, f"Scene {s + 1}.")
                               for s in range(scenes)])


def test_one_image_costs_the_tiny_configs_base_grid_in_single_tile_and_more_in_native(processors):
    processor = processors["llava-next"]
    assert base_grid_tokens(processor) == (32 // 8) ** 2 == 16     # tiny tower: 32 px tiles, 8 px patches
    conversation = build_conversation(story(3), "ImageChain")
    single = tokenize(conversation, processor, 4096, image_mode="single-tile")
    native = tokenize(conversation, processor, 4096)
    assert single.image_token_counts == [16, 16, 16]
    assert native.image_token_counts == [70, 70, 70]               # any-resolution tiles of a 64x48 frame
    assert native.length - single.length == 3 * (70 - 16)
    # Only the image tokens changed: the target still starts where the prompt ends.
    ids = single.inputs["input_ids"][0]
    assert processor.tokenizer.decode(ids[single.prompt_length:]).strip().startswith("Scene 3.")
    assert "pixel_values" not in single.inputs                     # the tiles are encoded by the scene code


def test_full_size_arithmetic_is_576_per_image_against_about_1950_in_any_resolution(full_size_processor):
    assert base_grid_tokens(full_size_processor) == 576            # (336 / 14) ** 2
    assert anyres_tokens(full_size_processor, 1920, 1080) == 1949  # one 16:9 frame, any-resolution tiles
    token_id = full_size_processor.tokenizer.convert_tokens_to_ids(image_token(full_size_processor))
    seven = tokenize(build_conversation(story(7, (1920, 1080)), "ImageChain"), full_size_processor, 10**6,
                     image_mode="single-tile")
    assert int((seven.inputs["input_ids"] == token_id).sum()) == 7 * 576 == 4032


def test_single_tile_is_the_centre_square_at_tile_size(processors):
    image = Image.new("RGB", (96, 48), (255, 0, 0))                # red left and right thirds
    image.paste((0, 255, 0), (24, 0, 72, 48))                      # a green centre square
    tile = single_tile(image, processors["llava-next"])
    assert tile.size == (32, 32)
    assert {tile.getpixel((x, y)) for x in (1, 16, 30) for y in (1, 16, 30)} == {(0, 255, 0)}


def test_single_tile_is_refused_for_other_models(processors):
    with pytest.raises(DataError, match="image_mode single-tile is for LLaVA-NeXT models"):
        tokenize(build_conversation(story(2), "ImageChain"), processors["qwen2-vl"], 4096, image_mode="single-tile")
    with pytest.raises(DataError, match="image_mode: unknown value 'tiles'"):
        tokenize(build_conversation(story(2), "ImageChain"), processors["llava-next"], 4096, image_mode="tiles")
