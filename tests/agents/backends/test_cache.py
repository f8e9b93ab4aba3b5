import asyncio
import shutil

from agents.backends.cache import CachedChatModel, CallCache
from agents.backends.chat import SamplingParams
from agents.backends.transformers_local import TransformersBackend
from tests.conftest import draw_image


class CountingBackend:
    """Counts calls that reach the real model behind it."""

    def __init__(self, inner):
        self.inner, self.backend, self.model_id, self.calls = inner, inner.backend, inner.model_id, 0

    async def chat(self, messages, **kwargs):
        self.calls += 1
        return await self.inner.chat(messages, **kwargs)

    async def aclose(self):
        pass


def ask(model, messages, params=SamplingParams(max_tokens=8)):
    return asyncio.run(model.chat(messages, params=params))


def test_second_identical_call_comes_from_the_cache_even_after_a_restart(tiny_models, images, tmp_path):
    real = CountingBackend(TransformersBackend(str(tiny_models["qwen2-vl"])))
    messages = [{"role": "user", "content": [{"type": "image", "path": images[0]}, {"type": "text", "text": "hi"}]}]
    first = ask(CachedChatModel(real, CallCache(tmp_path / "c.sqlite")), messages)
    again = ask(CachedChatModel(real, CallCache(tmp_path / "c.sqlite")), messages)  # a new process, same file
    assert real.calls == 1
    assert again.cached and not first.cached and again.text == first.text


def test_image_bytes_not_paths_decide_the_key(tiny_models, images, tmp_path):
    real = CountingBackend(TransformersBackend(str(tiny_models["qwen2-vl"])))
    model = CachedChatModel(real, CallCache(tmp_path / "c.sqlite"))
    moved = shutil.copy(images[0], tmp_path / "moved.png")
    for path in (images[0], moved):
        ask(model, [{"role": "user", "content": [{"type": "image", "path": path}]}])
    assert real.calls == 1  # same bytes elsewhere: a hit
    draw_image(moved, color=(1, 2, 3))
    ask(model, [{"role": "user", "content": [{"type": "image", "path": moved}]}])
    assert real.calls == 2  # same path, new bytes: a miss


def test_unseeded_sampling_is_never_cached(tiny_models, tmp_path):
    real = CountingBackend(TransformersBackend(str(tiny_models["llama"])))
    model = CachedChatModel(real, CallCache(tmp_path / "c.sqlite"))
    for _ in range(2):
        ask(model, [{"role": "user", "content": "hi"}], SamplingParams(max_tokens=4, temperature=0.7))
    assert real.calls == 2
    for _ in range(2):
        ask(model, [{"role": "user", "content": "hi"}], SamplingParams(max_tokens=4, temperature=0.7, seed=1))
    assert real.calls == 3


def test_identical_calls_in_flight_share_one_model_call(tiny_models, tmp_path):
    real = CountingBackend(TransformersBackend(str(tiny_models["llama"])))
    model = CachedChatModel(real, CallCache(tmp_path / "c.sqlite"))

    async def run():
        return await asyncio.gather(*[model.chat([{"role": "user", "content": "hi"}]) for _ in range(5)])

    replies = asyncio.run(run())
    assert real.calls == 1 and len({r.text for r in replies}) == 1
    assert model.cache.misses == 1
