import asyncio
import time

import pytest

from agents.backends.chat import BackendError, EndpointUnavailable, InvalidSchema, SamplingParams
from agents.backends.openai_client import OpenAIBackend, RetryPolicy, parse_retry_after
from agents.backends.openai_server import ChatServer
from agents.backends.structured import parse_json_reply
from agents.backends.transformers_local import TransformersBackend
from tests.servers import FaultyEndpoint, completion

FAST = RetryPolicy(attempts=4, base_delay=0.01, max_delay=2.0, timeout=1.0)
VERDICT = {"type": "object", "additionalProperties": False, "required": ["verdict", "reason"],
           "properties": {"verdict": {"enum": ["yes", "no"]},
                          "reason": {"type": "string", "pattern": "^[a-z ]{1,16}$"}}}


@pytest.fixture(scope="module")
def qwen_server(tiny_models):
    with ChatServer(TransformersBackend(str(tiny_models["qwen2-vl"]))) as server:
        yield server


def two_turns(images):
    return [
        {"role": "system", "content": "You compare images."},
        {"role": "user", "content": [{"type": "image", "path": images[0]}, {"type": "text", "text": "What is this?"}]},
        {"role": "assistant", "content": "A red square."},
        {"role": "user", "content": [{"type": "image", "path": images[1]}, {"type": "image", "path": images[2]},
                                     {"type": "text", "text": "And these two?"}]},
    ]


def call(backend, messages, **kwargs):
    async def run():
        try:
            return await backend.chat(messages, **kwargs)
        finally:
            await backend.aclose()
    return asyncio.run(run())


def test_multi_image_multi_turn_reaches_a_real_model(qwen_server, images):
    result = call(OpenAIBackend("tiny-qwen", qwen_server.base_url), two_turns(images),
                  params=SamplingParams(max_tokens=8))
    # 3 images of Qwen2-VL patches plus the text: far more prompt tokens than the text alone has.
    assert result.usage.prompt_tokens > 40
    assert 0 < result.usage.completion_tokens <= 8
    assert isinstance(result.text, str)


def test_schema_call_returns_schema_valid_json(qwen_server, images):
    for seed in range(3):
        result = call(OpenAIBackend("tiny-qwen", qwen_server.base_url), two_turns(images), schema=VERDICT,
                      params=SamplingParams(max_tokens=60, temperature=1.0, seed=seed))
        assert parse_json_reply(result.text, VERDICT)["verdict"] in ("yes", "no")


def test_retries_recover_from_500_429_and_timeouts(images):
    faults = [("status", 500), ("status", 429), ("sleep", 1.5)]
    with FaultyEndpoint(completion("ANSWER: 2"), faults) as endpoint:
        result = call(OpenAIBackend("m", endpoint.base_url, retry=FAST), [{"role": "user", "content": "hi"}])
    assert result.text == "ANSWER: 2"
    assert endpoint.requests == 4


def test_gives_up_after_the_limit_with_the_last_problem(images):
    with FaultyEndpoint(completion("never"), [("status", 503)] * 10) as endpoint:
        with pytest.raises(EndpointUnavailable, match=r"gave up after 4 attempts; last: HTTP 503"):
            call(OpenAIBackend("m", endpoint.base_url, retry=FAST), [{"role": "user", "content": "hi"}])
    assert endpoint.requests == 4


def test_client_errors_are_not_retried():
    with FaultyEndpoint(completion("x"), [("status", 400)]) as endpoint:
        with pytest.raises(BackendError, match="HTTP 400"):
            call(OpenAIBackend("m", endpoint.base_url, retry=FAST), [{"role": "user", "content": "hi"}])
    assert endpoint.requests == 1


def test_retry_after_is_honoured():
    with FaultyEndpoint(completion("ok"), [("status", 429, 1)]) as endpoint:
        start = time.monotonic()
        call(OpenAIBackend("m", endpoint.base_url, retry=FAST), [{"role": "user", "content": "hi"}])
    assert time.monotonic() - start >= 1.0


def test_parse_retry_after_reads_seconds_and_http_dates():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert parse_retry_after("soon") is None


def test_unreachable_endpoint_names_the_url():
    backend = OpenAIBackend("m", "http://127.0.0.1:9/v1", retry=FAST)
    with pytest.raises(EndpointUnavailable, match=r"cannot reach http://127.0.0.1:9/v1"):
        call(backend, [{"role": "user", "content": "hi"}])


def test_calls_spread_round_robin_and_respect_the_concurrency_limit():
    with FaultyEndpoint(completion("a"), latency=0.2) as one, FaultyEndpoint(completion("b"), latency=0.2) as two:
        backend = OpenAIBackend("m", [one.base_url, two.base_url], concurrency=2, retry=FAST)

        async def run():
            replies = await asyncio.gather(*[backend.chat([{"role": "user", "content": "hi"}]) for _ in range(8)])
            await backend.aclose()
            return replies

        replies = asyncio.run(run())
    assert sorted(r.text for r in replies) == ["a"] * 4 + ["b"] * 4
    assert one.max_in_flight == 2 and two.max_in_flight == 2


def test_request_carries_images_as_data_urls_and_the_schema(images):
    seen = {}

    def answer(body):
        seen.update(body)
        return completion("{}")

    with FaultyEndpoint(answer) as endpoint:
        call(OpenAIBackend("m", endpoint.base_url, retry=FAST), two_turns(images), schema=VERDICT,
             params=SamplingParams(seed=7, stop=("\n",)))
    urls = [p["image_url"]["url"] for m in seen["messages"] if isinstance(m["content"], list)
            for p in m["content"] if p["type"] == "image_url"]
    assert len(urls) == 3 and all(u.startswith("data:image/png;base64,") for u in urls)
    assert seen["response_format"]["json_schema"]["schema"] == VERDICT
    assert seen["seed"] == 7 and seen["stop"] == ["\n"]


def test_invalid_schema_is_refused_before_any_request():
    with FaultyEndpoint(completion("x")) as endpoint:
        with pytest.raises(InvalidSchema, match="not valid JSON Schema"):
            call(OpenAIBackend("m", endpoint.base_url), [{"role": "user", "content": "hi"}],
                 schema={"type": "banana"})
    assert endpoint.requests == 0
