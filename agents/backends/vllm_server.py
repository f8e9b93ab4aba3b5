"""`vllm` backend: start `vllm serve MODEL`, wait for it to be healthy, talk `openai` to it.

The server command is a template, so a machine without vLLM (or a test) can start any other
OpenAI-compatible server in its place:

    VLLMServer("meta-llama/Llama-3.3-70B-Instruct", tensor_parallel_size=4)
    VLLMServer("tiny:llama", command="python -m agents.backends.openai_server --model {model} --port {port}")
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time

import httpx

from agents.backends.chat import BackendError, SamplingParams
from agents.backends.openai_client import OpenAIBackend, RetryPolicy

DEFAULT_COMMAND = ("vllm serve {model} --host {host} --port {port} --tensor-parallel-size {tp} "
                   "--gpu-memory-utilization {gpu_mem} --served-model-name {model}")


class VLLMServer:
    def __init__(self, model: str, *, port: int | None = None, tensor_parallel_size: int = 1,
                 gpu_memory_utilization: float = 0.9, command: str | None = None,
                 startup_timeout: float = 1800.0, host: str = "127.0.0.1"):
        self.model = model
        self.host = host
        self.port = port or free_port(host)
        self.startup_timeout = startup_timeout
        template = command or DEFAULT_COMMAND
        self.argv = [part.format(model=model, host=host, port=self.port, tp=tensor_parallel_size,
                                 gpu_mem=gpu_memory_utilization, python=sys.executable)
                     for part in shlex.split(template)]
        self._log = tempfile.TemporaryFile(mode="w+b")
        self._process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> "VLLMServer":
        try:
            # Own process group, so stop() also ends the workers vLLM forks (one per GPU rank).
            self._process = subprocess.Popen(self.argv, stdout=self._log, stderr=subprocess.STDOUT,
                                             start_new_session=True)
        except FileNotFoundError:
            raise BackendError(f"vllm: cannot start server, {self.argv[0]!r} is not on PATH "
                               "(install the `vllm` extra on a GPU machine, or pass a server command)") from None
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        health = f"http://{self.host}:{self.port}/health"
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                raise BackendError(f"vllm: server command exited early with code {code}: {self._last_log_line()}")
            try:
                if httpx.get(health, timeout=2.0, trust_env=False).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        self.stop()
        raise BackendError(f"vllm: server not healthy at {health} after {self.startup_timeout:g}s")

    def _last_log_line(self) -> str:
        self._log.seek(0)
        lines = [line for line in self._log.read().decode(errors="replace").splitlines() if line.strip()]
        return lines[-1].strip() if lines else "(no output)"

    def stop(self, grace: float = 10.0) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        os.killpg(self._process.pid, signal.SIGTERM)
        try:
            self._process.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()

    def __enter__(self) -> "VLLMServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class VLLMBackend:
    """A started `VLLMServer` plus an `openai` client on it; `aclose` stops the server."""

    backend = "vllm"

    def __init__(self, model_id: str, *, concurrency: int = 64, retry: RetryPolicy = RetryPolicy(), **server_args):
        self.model_id = model_id
        self.server = VLLMServer(model_id, **server_args).start()
        self.client = OpenAIBackend(model_id, self.server.base_url, concurrency=concurrency, retry=retry)

    async def chat(self, messages, *, schema=None, params=SamplingParams()):
        return await self.client.chat(messages, schema=schema, params=params)

    async def aclose(self) -> None:
        await self.client.aclose()
        self.server.stop()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
