"""Next-scene generation: every variant on every story of a bucket, records, resume after a kill."""

import asyncio
import json

import pytest
from peft import LoraConfig, get_peft_model
from transformers import LlavaNextForConditionalGeneration

from agents.backends.chat import ChatResult
from agents.backends.transformers_local import TransformersBackend
from imagechain.data.conversation import VARIANTS, build_conversation
from imagechain.data.sources import iter_stories
from imagechain.eval.jsonl_store import read_jsonl
from imagechain.eval.predict import (
    PredictionSettings,
    VariantRun,
    load_predictions,
    predict_stories,
    prompt_hash,
    prompt_messages,
)


class CountingBackend:
    """A scripted chat backend: replies `pred <n>`, counts calls, and can die after `die_after` calls."""
    backend = "fake"

    def __init__(self, model_id="fake", die_after=None):
        self.model_id, self.die_after, self.calls = model_id, die_after, 0
        self.seen_params = []

    async def chat(self, messages, *, schema=None, params=None):
        if self.die_after is not None and self.calls >= self.die_after:
            raise KeyboardInterrupt  # what Ctrl-C or a kill looks like to the coroutine
        self.calls += 1
        self.seen_params.append(params)
        return ChatResult(text=f" pred {self.calls} ", model=self.model_id)

    async def aclose(self):
        pass


@pytest.fixture(scope="module")
def val_stories(storyframes_dir):
    return list(iter_stories(storyframes_dir, bucket="C2-6", split="val"))


@pytest.fixture(scope="module")
def train_pool(storyframes_dir):
    return list(iter_stories(storyframes_dir, bucket="C2-6", split="train"))


def test_every_variant_predicts_every_story_with_a_tiny_model(tiny_models, val_stories, train_pool, tmp_path):
    backend = TransformersBackend(str(tiny_models["llava-next"]))
    runs = [VariantRun(name, backend, "tiny-llava") for name in VARIANTS]
    settings = PredictionSettings(max_new_tokens=3)
    summary = asyncio.run(predict_stories(val_stories, runs, tmp_path, settings, train_pool))
    records = read_jsonl(tmp_path / "predictions.jsonl")
    assert len(val_stories) == 2 and summary.generated == len(records) == 2 * len(VARIANTS)
    got = {(r["variant"], r["story_id"]) for r in records}
    assert got == {(v, s.story_id) for v in VARIANTS for s in val_stories}
    for record in records:
        assert record["status"] == "ok" and isinstance(record["text"], str)
        assert record["bucket"] == f"C{record['num_scenes']}" and record["model"] == "tiny-llava"
        assert record["params"] == {**settings.as_dict(), "scene_input": "frame:first", "image_mode": "native"}
        assert len(record["prompt_hash"]) == 64
        story = next(s for s in val_stories if s.story_id == record["story_id"])
        assert record["reference"] == story.scenes[-1].description
    assert len(list((tmp_path / "frames").glob("*.png"))) > 0


def test_defaults_are_the_papers_and_greedy_sets_temperature_zero():
    params = PredictionSettings().params()
    assert (params.temperature, params.top_p, params.max_tokens, params.seed) == (0.2, 0.1, 1024, 30)
    assert PredictionSettings(greedy=True).params().temperature == 0.0


def test_prompt_is_the_conversation_without_its_target_one_frame_per_scene(val_stories, tmp_path):
    story = next(s for s in val_stories if s.num_scenes == 3)
    conversation = build_conversation(story, "ImageChain")
    messages = prompt_messages(conversation, tmp_path, frame="last")
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    images = [p["path"] for m in messages for p in m["content"] if p["type"] == "image"]
    assert len(images) == 3 and all(path.startswith(str(tmp_path)) for path in images)
    # The hash follows image bytes, not paths: the same frames written elsewhere hash the same.
    assert prompt_hash(messages) == prompt_hash(prompt_messages(conversation, tmp_path / "other", frame="last"))
    assert prompt_hash(messages) != prompt_hash(prompt_messages(conversation, tmp_path, frame="first"))


def test_a_killed_run_resumes_without_regenerating(val_stories, train_pool, tmp_path):
    variants = ["MLLM", "ImageChain", "FinalScene"]
    dying = CountingBackend(die_after=4)
    with pytest.raises(KeyboardInterrupt):
        asyncio.run(predict_stories(val_stories, [VariantRun(v, dying, "fake") for v in variants], tmp_path,
                                    concurrency=1))
    path = tmp_path / "predictions.jsonl"
    assert len(read_jsonl(path)) == 4
    with open(path, "a") as handle:  # the kill tore the line being written
        handle.write('{"story_id": "v2---two_2", "variant": "Ima')
    fresh = CountingBackend()
    summary = asyncio.run(predict_stories(val_stories, [VariantRun(v, fresh, "fake") for v in variants],
                                          tmp_path, concurrency=1))
    total = len(variants) * len(val_stories)
    assert (fresh.calls, summary.resumed, summary.generated) == (total - 4, 4, total - 4)
    lines = path.read_text().splitlines()
    assert len(lines) == total and all(json.loads(line) for line in lines)  # the torn line is gone
    assert len(summary.records) == total and len(load_predictions(path)) == total
    again = CountingBackend()
    asyncio.run(predict_stories(val_stories, [VariantRun(v, again, "fake") for v in variants], tmp_path))
    assert again.calls == 0


def test_over_long_prompts_are_recorded_not_truncated(tiny_models, val_stories, tmp_path):
    backend = TransformersBackend(str(tiny_models["llava-next"]))
    backend.max_length = 20  # far below any rendered story
    summary = asyncio.run(predict_stories(val_stories, [VariantRun("ImageChain", backend, "tiny")], tmp_path,
                                          PredictionSettings(max_new_tokens=2)))
    records = read_jsonl(tmp_path / "predictions.jsonl")
    assert summary.too_long == 2 and {r["status"] for r in records} == {"too_long"}
    assert all("context is 20" in r["error"] and r["text"] is None for r in records)


def test_lora_adapter_is_applied_in_process(tiny_models, val_stories, tmp_path):

    base = LlavaNextForConditionalGeneration.from_pretrained(tiny_models["llava-next"])
    lora = get_peft_model(base, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"]))
    lora.save_pretrained(tmp_path / "adapter")
    backend = TransformersBackend(str(tiny_models["llava-next"]), adapter=str(tmp_path / "adapter"))
    assert backend.model_id.endswith("+" + str(tmp_path / "adapter"))
    assert type(backend.model).__name__ == "PeftModel"
    summary = asyncio.run(predict_stories(val_stories[:1], [VariantRun("ImageChain", backend, backend.model_id)],
                                          tmp_path, PredictionSettings(max_new_tokens=2, greedy=True)))
    assert summary.generated == 1
