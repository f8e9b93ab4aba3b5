"""Averaged scene features at evaluation: the features `generate` receives are training's scene visuals
for the same story (mean, last), a one-frame scene is the model's own answer, and single-tile
mode costs the base grid per scene."""

import asyncio

import pytest
import torch
from PIL import Image

from agents.backends.chat import SamplingParams
from agents.backends.transformers_local import TransformersBackend
from imagechain.data.conversation import build_conversation
from imagechain.data.story import Scene, Story
from imagechain.eval.predict import PredictionSettings, VariantRun, predict_stories, prompt_messages
from imagechain.eval.scene_generator import SceneFeatureGenerator
from imagechain.train.data import ChainDataset, Collator, make_sample
from imagechain.train.scene_features import family_of, scene_visuals

NAMES = ("llava-next", "qwen2-vl")
GREEDY = SamplingParams(max_tokens=4, temperature=0.0)


def noisy_story(scenes: int = 3, frames: int = 3, size=(64, 48)) -> Story:
    generator = torch.Generator().manual_seed(scenes * 10 + frames)
    made = [Scene([Image.fromarray((torch.rand(size[1], size[0], 3, generator=generator) * 255).byte().numpy())
                   for _ in range(frames)], f"Scene {s + 1} happens.") for s in range(scenes)]
    return Story("noisy", "test", made, split="val")


@pytest.fixture(scope="module")
def generators(tiny_models):
    return {name: SceneFeatureGenerator(str(tiny_models[name])) for name in NAMES}


def captured_features(generator: SceneFeatureGenerator, messages) -> list[torch.Tensor]:
    """The scene features the generator hands to `generate` (mm_encoder_outputs) for `messages`."""
    seen = []
    original = generator.model.generate

    def spy(**kwargs):
        seen.append(kwargs["mm_encoder_outputs"]["image"].pooler_output)
        return original(**kwargs)

    generator.model.generate = spy
    try:
        asyncio.run(generator.chat(messages, params=GREEDY))
    finally:
        del generator.model.generate
    return seen[0]


def training_visuals(generator: SceneFeatureGenerator, story: Story, mode: str) -> list[torch.Tensor]:
    """What training places for `story` under `mode` (imagechain.train: sample, collate, scene visuals)."""
    family = family_of(generator.model.config)
    sample = make_sample(story, generator.processor, "ImageChain", "chat", "all-text", mode, 4096)
    item = ChainDataset([sample], generator.processor, family)[0]
    batch = Collator(family, generator.processor.tokenizer.pad_token_id, generator.processor)([item])
    frame_inputs = {k.removeprefix("frame_"): v for k, v in batch.items() if k.startswith("frame_")}
    with torch.no_grad():
        return scene_visuals(generator.model, family, frame_inputs, batch["frames_per_scene"].tolist())


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("mode", ["mean", "last"])
def test_eval_features_are_trainings_scene_visuals(generators, name, mode, tmp_path):
    generator, story = generators[name], noisy_story()
    conversation = build_conversation(story, "ImageChain")
    messages = prompt_messages(conversation, tmp_path, scene_visual=mode, scene_frames=True)
    assert [len(p["frames"]) for m in messages for p in m["content"] if p["type"] == "image"] == (
        [3, 3, 3] if mode == "mean" else [3, 3, 1])
    features = captured_features(generator, messages)
    expected = training_visuals(generator, story, mode)
    assert len(features) == len(expected) == 3
    for got, want in zip(features, expected):
        assert got.shape == want.shape and torch.allclose(got, want, atol=1e-5)
    # The mean is a mean: a context scene's features differ from any one of its frames.
    one_frame = training_visuals(generator, story, "first")[0]
    assert not torch.allclose(features[0], one_frame, atol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_one_frame_per_scene_is_the_models_own_answer(tiny_models, generators, name, tmp_path):
    conversation = build_conversation(noisy_story(scenes=2, frames=2), "ImageChain")
    paths = prompt_messages(conversation, tmp_path)
    frames = prompt_messages(conversation, tmp_path, scene_frames=True)
    reference = asyncio.run(TransformersBackend(str(tiny_models[name])).chat(paths, params=GREEDY))
    ours = asyncio.run(generators[name].chat(frames, params=GREEDY))
    assert ours.text == reference.text and ours.usage.prompt_tokens == reference.usage.prompt_tokens


def test_single_tile_costs_the_base_grid_per_scene(tiny_models, generators, tmp_path):
    tiles = SceneFeatureGenerator(str(tiny_models["llava-next"]), image_mode="single-tile")
    conversation = build_conversation(noisy_story(scenes=3, frames=2), "ImageChain")
    messages = prompt_messages(conversation, tmp_path, scene_visual="mean", scene_frames=True)
    features = captured_features(tiles, messages)
    assert [f.shape[0] for f in features] == [16, 16, 16]
    native = asyncio.run(generators["llava-next"].chat(messages, params=GREEDY)).usage.prompt_tokens
    single = asyncio.run(tiles.chat(messages, params=GREEDY)).usage.prompt_tokens
    assert native - single == 3 * (70 - 16)


def test_fine_tuned_variants_average_and_the_others_show_one_frame(generators, tmp_path):
    story = noisy_story(scenes=2, frames=3)
    generator = generators["llava-next"]
    runs = [VariantRun("ImageChain", generator, "tiny", scene_visual="mean"), VariantRun("MLLM", generator, "tiny")]
    summary = asyncio.run(predict_stories([story], runs, tmp_path, PredictionSettings(max_new_tokens=2, greedy=True)))
    params = {r["variant"]: r["params"] for r in summary.records}
    assert params["ImageChain"]["scene_input"] == "mean" and params["MLLM"]["scene_input"] == "frame:first"
    assert {p["image_mode"] for p in params.values()} == {"native"}
    assert all(r["status"] == "ok" for r in summary.records)
