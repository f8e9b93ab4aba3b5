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
