"""Eval throughput against a local OpenAI-compatible server with a fixed latency per call.

    .venv/bin/python bench/eval_throughput.py [--latency 0.1] [--tasks 128]

Prints questions answered per second at concurrency 1 and 32 and their ratio (the baseline is
concurrency 1 in the same run), then re-runs the concurrency-32 eval on the same output folder and
prints how many model calls it made (answers.jsonl and the call cache should make it zero).

The run is ITMR tasks of two questions and three drawn 96 px candidates each; the server answers
"ANSWER: 1" after sleeping `latency` seconds, so the model costs the same at any concurrency and
the figures measure our overhead and our overlap. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import shutil
import socket
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from PIL import Image, ImageDraw

from agents.backends.factory import ModelSpec
from graphs.verify import EvalSettings, run_verify
from schemas.task import load_tasks


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # listen() backlog: 32 clients connecting at once overflow the default 5


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the second waits for the client's
    # delayed ACK (~40 ms on Linux), which would swamp a 100 ms model.
    disable_nagle_algorithm = True
    latency = 0.0
    counter = None

    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.counter.get_lock():
            self.counter.value += 1
        time.sleep(self.latency)
        body = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": "ANSWER: 1"}}],
                           "usage": {"prompt_tokens": 1, "completion_tokens": 1}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _serve(port, latency, counter) -> None:
    handler = type("Handler", (_Handler,), {"latency": latency, "counter": counter})
    _Server(("127.0.0.1", port.value), handler).serve_forever()


class LatencyServer:
    """/v1/chat/completions that sleeps `latency` seconds, then answers; counts requests.

    It runs in its own process: on a 2-core machine a server thread in ours would compete with the
    eval for the GIL and the figures would measure the server, not the eval."""

    def __init__(self, latency: float):
        self._requests = multiprocessing.Value("i", 0)
        with socket.socket() as probe:  # a free port, picked here so the child need not report it
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process = multiprocessing.Process(
            target=_serve, args=(multiprocessing.Value("i", self.port), latency, self._requests), daemon=True)
        self.process.start()
        for _ in range(100):  # wait until it listens
            with socket.socket() as client:
                if client.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            time.sleep(0.05)

    @property
    def requests(self) -> int:
        return self._requests.value

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        self.process.terminate()
        self.process.join()


def make_benchmark(root: Path, tasks: int) -> Path:
    """`tasks` ITMR task folders (two questions, three candidates each) in the VisChainBench layout."""
    for t in range(tasks):
        folder = root / f"task-{t:04d}"
        folder.mkdir(parents=True)
        questions = []
        for q in range(2):
            choices = []
            for c in range(3):
                image = Image.new("RGB", (96, 96), ((t * 7) % 256, q * 90 + 40, c * 80 + 30))
                ImageDraw.Draw(image).ellipse([20, 20, 20 + 10 * (c + 1), 60], fill=(250, 250, 250))
                image.save(folder / f"q{q}_{c}.png")
                choices.append({"image": f"q{q}_{c}.png", "correct": c == 0})
            questions.append({"original_id": str(q + 1), "question": f"Which one, step {q + 1}?",
                              "task_description": "Pick one.", "choices": choices, "metadata": ""})
        task = {"initial_scene_description": f"Bench scene {t}.", "questions": questions,
                "metadata": json.dumps({"domain": "bench"})}
        (folder / "task.json").write_text(json.dumps(task))
    return root


def timed_eval(root: Path, out: Path, server: LatencyServer, concurrency: int) -> tuple[float, int, int]:
    """(seconds, answers written, model calls) of one eval of `root` into `out`."""
    spec = ModelSpec(model="bench", backend="openai", base_urls=(server.base_url,), concurrency=concurrency)
    settings = EvalSettings(concurrency=concurrency, max_tokens=16)
    started = time.perf_counter()
    result = asyncio.run(run_verify(root, out, load_tasks(root), [(spec, 1.0)], settings, rank=False))
    return time.perf_counter() - started, result.new_answers, result.model_calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.1, help="seconds the server takes per call")
    parser.add_argument("--tasks", type=int, default=128, help="tasks at concurrency 32 (a quarter at 1)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vischain-bench-"))
    try:
        server = LatencyServer(args.latency)
        serial_run = make_benchmark(work / "serial", max(4, args.tasks // 4))  # 1 at a time: keep it short
        parallel_run = make_benchmark(work / "parallel", args.tasks)
        serial = timed_eval(serial_run, work / "out-1", server, 1)
        parallel = timed_eval(parallel_run, work / "out-32", server, 32)
        requests_before = server.requests
        again = timed_eval(parallel_run, work / "out-32", server, 32)
        rate_1, rate_32 = serial[1] / serial[0], parallel[1] / parallel[0]
        print(f"server latency {args.latency * 1000:.0f} ms per call; ITMR tasks of 2 questions")
        print(f"concurrency  1: {serial[1]:4d} questions in {serial[0]:6.2f} s = {rate_1:7.1f} items/s "
              f"(ideal {1 / args.latency:.1f})")
        print(f"concurrency 32: {parallel[1]:4d} questions in {parallel[0]:6.2f} s = {rate_32:7.1f} items/s "
              f"(ideal {32 / args.latency:.1f})")
        print(f"ratio 32/1: {rate_32 / rate_1:.1f}x (ideal 32x)")
        print(f"second run: {again[1]} new answers, {again[2]} model calls, "
              f"{server.requests - requests_before} requests reached the server, {again[0]:.2f} s")
        server.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
