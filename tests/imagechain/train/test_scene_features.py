"""Scene visuals on the tiny LLaVA-NeXT and Qwen2-VL: the placed features are the mean of per-frame
features, image-token counts line up, and a one-frame scene reproduces the model's own forward."""

import pytest
import torch
from peft import LoraConfig, get_peft_model
from PIL import Image

from agents.backends.hf_loading import load_model
from imagechain.data.conversation import build_conversation
from imagechain.data.image_modes import single_tile
from imagechain.data.render import select_frames, tokenize
from imagechain.data.story import Scene, Story
from imagechain.train.config import LANGUAGE_MODEL_LINEARS
from imagechain.train.data import ChainDataset, Collator, make_sample
from imagechain.train.scene_features import (
    SceneChainModel,
    family_of,
    place_scene_features,
    reduce_frames,
    scene_visuals,
)
from schemas.errors import DataError

NAMES = ("llava-next", "qwen2-vl")


@pytest.fixture(scope="module")
def models(tiny_models):
    torch.manual_seed(0)
    return {name: load_model(str(tiny_models[name])) for name in NAMES}


def noisy_story(story_id: str, scenes: int, frames: int = 3, size=(64, 48)) -> Story:
    torch.manual_seed(len(story_id) + scenes)
    made = [Scene([Image.fromarray((torch.rand(size[1], size[0], 3) * 255).byte().numpy()) for _ in range(frames)],
                  f"{story_id} scene {s + 1} happens.") for s in range(scenes)]
    return Story(story_id, "test", made)


def batch_of(loaded, stories, mode="mean", loss="all-text", image_mode="native"):
    family = family_of(loaded.model.config, image_mode)
    samples = [make_sample(s, loaded.processor, "ImageChain", "chat", loss, mode, 4096, image_mode) for s in stories]
    dataset = ChainDataset(samples, loaded.processor, family)
    collate = Collator(family, loaded.processor.tokenizer.pad_token_id, loaded.processor)
    return samples, collate([dataset[i] for i in range(len(samples))])


@pytest.mark.parametrize("name", NAMES)
def test_scene_visual_is_the_mean_of_per_frame_features(models, name):
    loaded = models[name]
    model, processor, family = loaded.model, loaded.processor, family_of(loaded.model.config)
    story = noisy_story("s", scenes=2, frames=3)
    samples, batch = batch_of(loaded, [story])
    frame_inputs = {k.removeprefix("frame_"): v for k, v in batch.items() if k.startswith("frame_")}
    with torch.no_grad():
        scenes = scene_visuals(model, family, frame_inputs, batch["frames_per_scene"].tolist())
        for scene, frames in zip(scenes, story.scenes):
            # Each frame alone through the public API, then the mean.
            alone = [model.get_image_features(**family.process(processor, [f])).pooler_output[0] for f in frames.frames]
            assert torch.allclose(scene, torch.stack(alone).mean(0), atol=1e-5)
            assert not torch.allclose(alone[0], alone[1], atol=1e-3)  # the frames do differ
        embeds = place_scene_features(model.get_input_embeddings()(batch["input_ids"]), batch["input_ids"],
                                      model.config.image_token_id, scenes)
    positions = batch["input_ids"][0] == model.config.image_token_id
    assert torch.equal(embeds[0][positions], torch.cat(scenes))


@pytest.mark.parametrize("name", NAMES)
def test_image_token_counts_match_feature_rows(models, name):
    loaded = models[name]
    samples, batch = batch_of(loaded, [noisy_story("a", 2), noisy_story("bb", 3)])
    family = family_of(loaded.model.config)
    frame_inputs = {k.removeprefix("frame_"): v for k, v in batch.items() if k.startswith("frame_")}
    with torch.no_grad():
        per_frame = family.encode(loaded.model, frame_inputs)
        scenes = reduce_frames(per_frame, batch["frames_per_scene"].tolist())
    counts = [c for s in samples for c in s.scene_token_counts]
    assert batch["frames_per_scene"].tolist() == [3] * 5
    assert [f.shape[0] for f in per_frame] == [c for c in counts for _ in range(3)]
    assert [s.shape[0] for s in scenes] == counts == batch["scene_token_counts"].tolist()
    image_id = loaded.model.config.image_token_id
    assert [int((row == image_id).sum()) for row in batch["input_ids"]] == [sum(s.scene_token_counts) for s in samples]


@pytest.mark.parametrize("name", NAMES)
def test_one_frame_scenes_reproduce_the_models_own_forward(models, name):
    """Position ids (Qwen2-VL's M-RoPE included), placement and padding: logits equal model(**inputs)."""
    loaded = models[name]
    stories = [noisy_story("short", 2), noisy_story("longer", 3)]
    _, batch = batch_of(loaded, stories, mode="first")
    with torch.no_grad():
        logits = SceneChainModel(loaded.model)(**batch).logits
        for row, story in enumerate(stories):  # row 0 is right-padded
            inputs = tokenize(build_conversation(story, "ImageChain"), loaded.processor, 4096).inputs
            reference = loaded.model(**inputs).logits[0]
            assert torch.allclose(logits[row, : reference.shape[0]], reference, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_a_backward_pass_reaches_lora_only(models, name):

    loaded = load_model(str(models[name].model.name_or_path))
    for param in loaded.model.parameters():
        param.requires_grad_(False)
    peft_model = get_peft_model(loaded.model, LoraConfig(r=4, lora_alpha=8, target_modules=LANGUAGE_MODEL_LINEARS))
    _, batch = batch_of(loaded, [noisy_story("g", 2)])
    SceneChainModel(peft_model)(**batch).loss.backward()
    with_grad = {n for n, p in peft_model.named_parameters() if p.grad is not None}
    assert with_grad and all("lora_" in n and "language_model" in n for n in with_grad)
    assert {n for n, p in peft_model.named_parameters() if p.requires_grad} == with_grad


def test_a_batch_without_scenes_still_runs_the_vision_tower(models):
    loaded = models["llava-next"]
    calls = []
    handle = loaded.model.model.vision_tower.register_forward_hook(lambda *args: calls.append(1))
    tokenizer = loaded.processor.tokenizer
    ids = torch.tensor([tokenizer("USER: hello ASSISTANT: hi</s>", add_special_tokens=False)["input_ids"]])
    family = family_of(loaded.model.config)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids,
             "frames_per_scene": torch.zeros(0, dtype=torch.long),
             "scene_token_counts": torch.zeros(0, dtype=torch.long),
             **{f"frame_{k}": v for k, v in family.dummy(loaded.processor).items()}}
    try:
        with torch.no_grad():
            text_only = loaded.model(input_ids=ids, attention_mask=batch["attention_mask"], labels=ids).loss
            loss = SceneChainModel(loaded.model)(**batch).loss
    finally:
        handle.remove()
    assert len(calls) == 1 and torch.allclose(loss, text_only)


def test_single_tile_places_the_base_tiles_features_averaged_over_frames(models):
    """Single-tile mode: each frame's centre tile through tower and projector (the model's own base-image
    features, without any-resolution tiles or newline), averaged per scene; 16 tokens per scene."""
    loaded = models["llava-next"]
    model, processor = loaded.model, loaded.processor
    story = noisy_story("tile", scenes=2, frames=3)
    samples, batch = batch_of(loaded, [story], image_mode="single-tile")
    assert samples[0].scene_token_counts == [16, 16] and batch["frame_pixel_values"].shape == (6, 3, 32, 32)
    family = family_of(model.config, "single-tile")
    frame_inputs = {k.removeprefix("frame_"): v for k, v in batch.items() if k.startswith("frame_")}
    with torch.no_grad():
        scenes = scene_visuals(model, family, frame_inputs, batch["frames_per_scene"].tolist())
        for scene, frames in zip(scenes, story.scenes):
            # The model's public API on the tile: its packed output starts with the base image's 16 rows.
            tiles = [single_tile(frame, processor) for frame in frames.frames]
            alone = [model.get_image_features(**processor.image_processor(images=[t], return_tensors="pt"))
                     .pooler_output[0][:16] for t in tiles]
            assert torch.allclose(scene, torch.stack(alone).mean(0), atol=1e-5)
        loss = SceneChainModel(model, "single-tile")(**batch).loss
    assert torch.isfinite(loss)
    with pytest.raises(DataError, match="image_mode single-tile is for LLaVA-NeXT"):
        family_of(models["qwen2-vl"].model.config, "single-tile")


def test_frame_selection_modes():
    frames = [["a1", "a2", "a3"], ["b1", "b2"], ["c1", "c2", "c3"]]
    assert select_frames(frames, "mean") == frames
    assert select_frames(frames, "last") == [["a1", "a2", "a3"], ["b1", "b2"], ["c3"]]  # the target: its last frame
    assert select_frames(frames, "first") == [["a1"], ["b1"], ["c1"]]
    with pytest.raises(DataError, match="unknown scene visual 'median'"):
        select_frames(frames, "median")


def test_mismatches_fail_loudly():
    with pytest.raises(DataError, match="different feature shapes"):
        reduce_frames([torch.zeros(4, 2), torch.zeros(5, 2)], [2])
    with pytest.raises(DataError, match="3 frame features for 2 frames"):
        reduce_frames([torch.zeros(4, 2)] * 3, [2])
    ids = torch.tensor([[7, 9, 9, 7]])
    with pytest.raises(DataError, match="2 image tokens in the batch but 3 scene feature rows"):
        place_scene_features(torch.zeros(1, 4, 2), ids, 9, [torch.ones(3, 2)])
