"""`vllm` backend: start `vllm serve MODEL`, wait for it to be healthy, talk `openai` to it.

The server command is a template, so a machine without vLLM (or a test) can start any other
OpenAI-compatible server in its place:

    VLLMServer("meta-llama/Llama-3.3-70B-Instruct", tensor_parallel_size=4)
    VLLMServer("tiny:llama", command="python -m agents.backends.openai_server --model {model} --port {port}")

Multi-image serving takes three settings from the profile's model entry (docs/serving.md):
`max_model_len` (--max-model-len: the context), `max_images_per_prompt` (--limit-mm-per-prompt: vLLM
refuses a prompt with more images than this) and `max_pixels` (--mm-processor-kwargs for Qwen2-VL-class
models: each image is resized to at most this many pixels, so at most max_pixels / 28^2 tokens).

Backends whose server settings are the same share one server (`SERVERS`): a profile whose keywords,
validator and verifier are the same 72B model starts it once, whatever their client settings.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

import httpx

from agents.backends.chat import BackendError, SamplingParams
from agents.backends.openai_client import OpenAIBackend, RetryPolicy

DEFAULT_COMMAND = ("vllm serve {model} --host {host} --port {port} --tensor-parallel-size {tp} "
                   "--gpu-memory-utilization {gpu_mem} --served-model-name {model}")


@dataclass(frozen=True)
class ServeSettings:
    """What a vLLM server is started with; two backends with equal settings share one server."""

    model: str
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    max_model_len: int | None = None
    """--max-model-len: prompt plus reply tokens; None leaves vLLM's default (the model config's)."""
    max_images_per_prompt: int | None = None
    """--limit-mm-per-prompt {"image": N}; None leaves vLLM's default (1 image for most models)."""
    max_pixels: int | None = None
    """--mm-processor-kwargs {"max_pixels": N}, Qwen2-VL-class models: a bound on each image's tokens."""
    command: str | None = None
    """Replaces `vllm serve ...` (the settings above are then the command's business)."""

    def argv(self, host: str, port: int) -> list[str]:
        values = dict(model=self.model, host=host, port=port, tp=self.tensor_parallel_size,
                      gpu_mem=self.gpu_memory_utilization, python=sys.executable)
        argv = [part.format(**values) for part in shlex.split(self.command or DEFAULT_COMMAND)]
        if self.command:
            return argv
        if self.max_model_len:
            argv += ["--max-model-len", str(self.max_model_len)]
        if self.max_images_per_prompt:
            argv += ["--limit-mm-per-prompt", json.dumps({"image": self.max_images_per_prompt})]
        if self.max_pixels:
            argv += ["--mm-processor-kwargs", json.dumps({"max_pixels": self.max_pixels})]
        return argv


class VLLMServer:
    def __init__(self, model: str, *, port: int | None = None, tensor_parallel_size: int = 1,
                 gpu_memory_utilization: float = 0.9, command: str | None = None,
                 startup_timeout: float = 1800.0, host: str = "127.0.0.1", max_model_len: int | None = None,
                 max_images_per_prompt: int | None = None, max_pixels: int | None = None):
        self.model = model
        self.host = host
        self.port = port or free_port(host)
        self.startup_timeout = startup_timeout
        self.settings = ServeSettings(model, tensor_parallel_size, gpu_memory_utilization, max_model_len,
                                      max_images_per_prompt, max_pixels, command)
        self.argv = self.settings.argv(host, self.port)
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


class SharedServers:
    """Started servers by their settings, counted: the first backend starts one, the last to close stops it."""

    def __init__(self):
        self._lock = threading.Lock()
        self._servers: dict[ServeSettings, tuple[VLLMServer, int]] = {}

    def acquire(self, settings: ServeSettings) -> VLLMServer:
        with self._lock:  # held while starting: a second backend with the same settings waits for this server
            server, users = self._servers.get(settings, (None, 0))
            if server is None:
                server = VLLMServer(settings.model, tensor_parallel_size=settings.tensor_parallel_size,
                                    gpu_memory_utilization=settings.gpu_memory_utilization,
                                    command=settings.command, max_model_len=settings.max_model_len,
                                    max_images_per_prompt=settings.max_images_per_prompt,
                                    max_pixels=settings.max_pixels).start()
            self._servers[settings] = (server, users + 1)
            return server

    def release(self, server: VLLMServer) -> None:
        with self._lock:
            _, users = self._servers[server.settings]
            if users > 1:
                self._servers[server.settings] = (server, users - 1)
                return
            del self._servers[server.settings]
        server.stop()

    def running(self) -> int:
        with self._lock:
            return len(self._servers)


SERVERS = SharedServers()


class VLLMBackend:
    """A `VLLMServer` (shared with every backend of the same settings) plus an `openai` client on it;
    `aclose` releases the server, which stops when its last backend closes."""

    backend = "vllm"

    def __init__(self, settings: ServeSettings, *, concurrency: int = 64, retry: RetryPolicy = RetryPolicy()):
        self.model_id = settings.model
        self.server = SERVERS.acquire(settings)
        self.client = OpenAIBackend(self.model_id, self.server.base_url, concurrency=concurrency, retry=retry)
        self._closed = False

    async def chat(self, messages, *, schema=None, params=SamplingParams()):
        return await self.client.chat(messages, schema=schema, params=params)

    async def aclose(self) -> None:
        await self.client.aclose()
        if not self._closed:  # released once, however often it is closed
            self._closed = True
            SERVERS.release(self.server)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
