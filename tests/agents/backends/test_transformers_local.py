import asyncio
import time

import pytest

from agents.backends.chat import BackendError, InvalidSchema, ModelNotFound, SamplingParams
from agents.backends.structured import parse_json_reply
from agents.backends.transformers_local import TransformersBackend

SCHEMA = {"type": "object", "additionalProperties": False, "required": ["answer", "confidence", "reason"],
          "properties": {"answer": {"enum": ["A", "B", "C", "D"]},
                         "confidence": {"type": "integer", "minimum": 0, "maximum": 9},
                         "reason": {"type": "string", "pattern": "^[a-z ]{1,12}$"}}}


def three_images_two_turns(images):
    return [
        {"role": "user", "content": [{"type": "image", "path": images[0]}, {"type": "text", "text": "Describe it."}]},
        {"role": "assistant", "content": "A red square on a wall."},
        {"role": "user", "content": [{"type": "image", "path": images[1]}, {"type": "image", "path": images[2]},
                                     {"type": "text", "text": "Which of these comes next?"}]},
    ]


@pytest.mark.parametrize("name", ["llava-next", "qwen2-vl"])
def test_vision_models_take_three_images_over_two_turns(tiny_models, images, name):
    backend = TransformersBackend(str(tiny_models[name]))
    result = asyncio.run(backend.chat(three_images_two_turns(images), params=SamplingParams(max_tokens=6)))
    image_token = backend._loaded.processor.image_token
    encoded = backend._encode(three_images_two_turns_normalized(images))
    image_positions = int((encoded["input_ids"] == backend.tokenizer.convert_tokens_to_ids(image_token)).sum())
    assert image_positions > 3  # every image expanded to its patch tokens, not one placeholder each
    assert result.usage.prompt_tokens == encoded["input_ids"].shape[1]
    assert 1 <= result.usage.completion_tokens <= 6


def three_images_two_turns_normalized(images):
    from agents.backends.chat import normalize_messages

    return normalize_messages(three_images_two_turns(images))


@pytest.mark.parametrize("name", ["llava-next", "qwen2-vl", "llama"])
def test_schema_calls_on_random_weights_always_validate(tiny_models, images, name):
    backend = TransformersBackend(str(tiny_models[name]))
    messages = three_images_two_turns(images) if name != "llama" else [{"role": "user", "content": "Pick one."}]
    for seed in range(4):
        params = SamplingParams(max_tokens=80, temperature=1.0, seed=seed)
        reply = asyncio.run(backend.chat(messages, schema=SCHEMA, params=params))
        value = parse_json_reply(reply.text, SCHEMA)
        assert value["answer"] in "ABCD" and 0 <= value["confidence"] <= 9


def test_same_seed_same_text_and_greedy_is_repeatable(tiny_models):
    backend = TransformersBackend(str(tiny_models["llama"]))
    messages = [{"role": "user", "content": "Say something."}]
    sampled = [asyncio.run(backend.chat(messages, params=SamplingParams(max_tokens=10, temperature=1.0, seed=3)))
               for _ in range(2)]
    greedy = [asyncio.run(backend.chat(messages, params=SamplingParams(max_tokens=10))) for _ in range(2)]
    assert sampled[0].text == sampled[1].text and greedy[0].text == greedy[1].text


def test_concurrent_callers_share_one_model_without_blocking_the_loop(tiny_models, images):
    backend = TransformersBackend(str(tiny_models["llava-next"]))
    ticks = []

    async def ticker(stop):
        while not stop.is_set():
            ticks.append(time.monotonic())
            await asyncio.sleep(0.005)

    async def run():
        stop = asyncio.Event()
        tick_task = asyncio.create_task(ticker(stop))
        params = SamplingParams(max_tokens=20, temperature=1.0, seed=1)
        replies = await asyncio.gather(*[backend.chat(three_images_two_turns(images), params=params)
                                         for _ in range(4)])
        stop.set()
        await tick_task
        return replies

    replies = asyncio.run(run())
    assert len({r.text for r in replies}) == 1  # same seed under the lock: same text for every caller
    assert len(ticks) >= 5  # the loop kept running while the model generated


def test_stop_strings_cut_the_reply(tiny_models):
    backend = TransformersBackend(str(tiny_models["llama"]))
    messages = [{"role": "user", "content": "Count."}]
    full = asyncio.run(backend.chat(messages, params=SamplingParams(max_tokens=30))).text
    stop = full[5:7]
    assert stop and stop not in full[:5]
    cut = asyncio.run(backend.chat(messages, params=SamplingParams(max_tokens=30, stop=(stop,)))).text
    assert cut == full[: full.find(stop)]


def test_text_only_model_refuses_images_with_a_clear_error(tiny_models, images):
    backend = TransformersBackend(str(tiny_models["llama"]))
    with pytest.raises(BackendError, match="text-only model"):
        asyncio.run(backend.chat([{"role": "user", "content": [{"type": "image", "path": images[0]}]}]))


def test_missing_model_path_is_one_line(tmp_path):
    with pytest.raises(ModelNotFound, match="model path does not exist") as err:
        TransformersBackend(str(tmp_path / "no-such-model"))
    assert "\n" not in str(err.value)


def test_unknown_tiny_model_names_the_known_ones():
    with pytest.raises(ModelNotFound, match="tiny:llava-next"):
        TransformersBackend("tiny:gpt-9")


def test_invalid_schema_is_one_line(tiny_models):
    backend = TransformersBackend(str(tiny_models["llama"]))
    with pytest.raises(InvalidSchema, match=r"at properties/x/minimum"):
        asyncio.run(backend.chat([{"role": "user", "content": "x"}],
                                 schema={"type": "object", "properties": {"x": {"minimum": "zero"}}}))
