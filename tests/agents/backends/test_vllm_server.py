import asyncio

import pytest

from agents.backends.chat import BackendError, SamplingParams
from agents.backends.factory import ModelSpec, open_backend
from agents.backends.vllm_server import VLLMServer

OUR_SERVER = "{python} -m agents.backends.openai_server --model {model} --host {host} --port {port}"


def test_launcher_starts_waits_serves_and_stops(tiny_models):
    spec = ModelSpec(model=str(tiny_models["llama"]), backend="vllm", server_command=OUR_SERVER)
    backend = open_backend(spec)
    process = backend.server._process

    async def run():
        try:
            return await backend.chat([{"role": "user", "content": "hello"}], params=SamplingParams(max_tokens=5))
        finally:
            await backend.aclose()

    result = asyncio.run(run())
    assert 1 <= result.usage.completion_tokens <= 5
    assert process.poll() is not None  # stopped on close


def test_command_that_exits_early_is_a_clear_error():
    server = VLLMServer("some/model", command="{python} -c \"print('CUDA driver not found'); raise SystemExit(3)\"")
    with pytest.raises(BackendError, match=r"exited early with code 3: CUDA driver not found"):
        server.start()


def test_missing_executable_says_what_to_install():
    with pytest.raises(BackendError, match=r"'no-such-vllm' is not on PATH"):
        VLLMServer("m", command="no-such-vllm serve {model}").start()


def test_default_command_is_vllm_serve_with_profile_settings():
    server = VLLMServer("meta-llama/Llama-3.3-70B-Instruct", port=8123, tensor_parallel_size=4,
                        gpu_memory_utilization=0.85)
    assert server.argv[:3] == ["vllm", "serve", "meta-llama/Llama-3.3-70B-Instruct"]
    assert server.argv[server.argv.index("--tensor-parallel-size") + 1] == "4"
    assert server.argv[server.argv.index("--gpu-memory-utilization") + 1] == "0.85"
    assert server.base_url == "http://127.0.0.1:8123/v1"


def test_unknown_backend_is_one_line():
    with pytest.raises(BackendError, match="unknown backend 'tgi'"):
        ModelSpec(model="m", backend="tgi")


def test_model_flag_forms():
    from agents.backends.factory import parse_model_arg

    assert parse_model_arg("tiny:qwen2-vl") == ModelSpec(model="tiny:qwen2-vl")
    assert parse_model_arg("vllm:meta-llama/Llama-3.3-70B-Instruct").backend == "vllm"
    remote = parse_model_arg("openai:qwen@http://a:1/v1,http://b:2/v1")
    assert remote.base_urls == ("http://a:1/v1", "http://b:2/v1") and remote.model == "qwen"
    with pytest.raises(BackendError, match="expected openai:NAME@"):
        parse_model_arg("openai:qwen")


# ---- Multi-image serving settings and shared servers ---------------------------------------------

def test_serving_settings_become_vllm_flags():
    import json

    from agents.backends.vllm_server import ServeSettings

    argv = ServeSettings("Qwen/Qwen2-VL-72B-Instruct", 4, max_model_len=32768, max_images_per_prompt=21,
                         max_pixels=1003520).argv("127.0.0.1", 8000)
    assert argv[argv.index("--max-model-len") + 1] == "32768"
    assert json.loads(argv[argv.index("--limit-mm-per-prompt") + 1]) == {"image": 21}
    assert json.loads(argv[argv.index("--mm-processor-kwargs") + 1]) == {"max_pixels": 1003520}
    assert "--max-model-len" not in ServeSettings("m").argv("127.0.0.1", 8000)  # unset: vLLM's defaults


def test_backends_with_the_same_server_settings_share_one_server(tiny_models):
    from agents.backends.vllm_server import SERVERS

    base = dict(model=str(tiny_models["llama"]), backend="vllm", server_command=OUR_SERVER)
    first = open_backend(ModelSpec(**base, concurrency=64))
    second = open_backend(ModelSpec(**base, concurrency=4, timeout=30.0))  # client settings differ: same server
    other = open_backend(ModelSpec(**base, max_model_len=2048))  # a server setting differs: its own server
    assert first.server is second.server and other.server is not first.server and SERVERS.running() == 2

    async def run():
        await first.aclose()
        await first.aclose()  # a second close does not release the server twice
        assert second.server._process.poll() is None  # still serving the second backend
        reply = await second.chat([{"role": "user", "content": "hi"}], params=SamplingParams(max_tokens=3))
        await second.aclose()
        await other.aclose()
        return reply

    assert asyncio.run(run()).text is not None
    assert first.server._process.poll() is not None and other.server._process.poll() is not None
    assert SERVERS.running() == 0


def test_the_paper_profile_serves_its_largest_plannable_task():
    from agents.backends.factory import serve_settings
    from graphs.profile import load_profile

    profile = load_profile("paper")
    shape = profile.generate.plan_shape
    choices = 1 + shape.max_distractors
    largest = max(shape.max_steps * choices,                 # itmr, icir: every step's choices
                  1 + shape.max_steps * (1 + choices))       # iomr: initial state, then condition + options
    largest = min(largest, shape.max_images or largest)      # the budget the planner is held to
    assert largest == shape.largest_task() == 27             # the paper's largest tasks
    qwen = [profile.keywords, profile.validator, profile.verifiers[0].spec]
    assert {serve_settings(spec) for spec in qwen} == {serve_settings(profile.keywords)}  # one server
    assert all(spec.max_images_per_prompt == largest for spec in qwen)
    tokens_per_image = profile.keywords.max_pixels // (28 * 28)
    assert largest * tokens_per_image < profile.keywords.max_model_len  # images leave room for the text
