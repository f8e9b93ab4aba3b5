"""The review server on a 2,000-task run: p50/p95 server time of the queue page, a task page and an accept.

    .venv/bin/python bench/review.py [--tasks 2000] [--requests 200] [--out DIR]

The run: the example run's three tasks copied to --tasks tasks (a third per kind) with new ids, each
image redrawn as its own random picture (so no two images share a SHA-256 or a pHash, as validate
wants) and a provenance line per image; `vischain validate` must pass before anything is timed. The
queue order comes from a priority.jsonl ranked by verify's own code (agents/protocol/priority.py)
over scripted answers of two models (right 80% of the time), so every task page has model evidence.

The server is the real app under uvicorn in this process; requests come one at a time from httpx
over 127.0.0.1. "Server time" is measured inside the app (an ASGI wrapper, request start to last
byte sent); "client" adds HTTP and the loopback. Each task page and each accept is a different task.
Figures and the machine they came from: docs/review.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
import imagehash  # noqa: E402
from PIL import Image  # noqa: E402

from agents.protocol.priority import rank_tasks  # noqa: E402
from agents.protocol.prompts import prompt_hash  # noqa: E402
from agents.protocol.turns import task_script  # noqa: E402
from benchmark_data import EXAMPLE_RUN  # noqa: E402
from schemas.rules import validate_path  # noqa: E402
from schemas.task import TASK_KINDS, load_tasks, read_task_json, task_images  # noqa: E402
from vischain.review.app import create_app  # noqa: E402
from vischain.review.serving import ThreadedServer  # noqa: E402
from vischain.review.store import ReviewStore  # noqa: E402

MODELS = ("model-a", "model-b")


def build_run(root: Path, tasks: int, seed: int = 0) -> Path:
    """`tasks` tasks (kind-00001 ...), each image a distinct random picture with its provenance line."""
    rng = random.Random(seed)
    (root / "tasks").mkdir(parents=True)
    shutil.copy(EXAMPLE_RUN / "run.json", root / "run.json")
    template = json.loads((EXAMPLE_RUN / "provenance.jsonl").read_text().splitlines()[0])
    lines = []
    for n in range(tasks):
        kind = TASK_KINDS[n % 3]
        source = EXAMPLE_RUN / "tasks" / kind / f"{kind}-0001"
        target = root / "tasks" / kind / f"{kind}-{n // 3 + 1:05d}"
        target.mkdir(parents=True)
        shutil.copy(source / "task.json", target / "task.json")
        for _, name in task_images(read_task_json(source)):
            # 8x8 random cells scaled up: a pHash as random as a photo's, ~1 KB per file.
            cells = Image.frombytes("RGB", (8, 8), rng.randbytes(8 * 8 * 3))
            picture = cells.resize((128, 128), Image.NEAREST)
            picture.save(target / name)
            lines.append({**template, "file": f"tasks/{kind}/{target.name}/{name}",
                          "sha256": hashlib.sha256((target / name).read_bytes()).hexdigest(),
                          "phash": str(imagehash.phash(picture))})
    (root / "provenance.jsonl").write_text("".join(json.dumps(line, sort_keys=True) + "\n" for line in lines))
    return root


def rank(root: Path, seed: int = 0) -> None:
    """verify/priority.jsonl from scripted answers, ranked by verify's own code."""
    rng, items, answers = random.Random(seed), load_tasks(root), []
    for item in items:
        for question in task_script(item).questions:
            labels = [label for label, _ in question.choices]
            for model in MODELS:
                label = question.truth if rng.random() < 0.8 else rng.choice([x for x in labels if x != question.truth])
                answers.append({"model": model, "kind": item.kind, "task_id": item.task_id, "domain": item.domain,
                                "question": question.number, "reply": f"ANSWER: {label}", "label": label,
                                "truth": question.truth, "correct": label == question.truth, "format_error": False,
                                "skipped": False, "prompt_hash": prompt_hash(), "history": "model"})
    priority = rank_tasks(answers, items, {}, root)
    (root / "verify").mkdir()
    (root / "verify" / "priority.jsonl").write_text("".join(json.dumps(e) + "\n" for e in priority))


class Timed:
    """ASGI wrapper: seconds from a request's start to its last byte, per path family."""

    def __init__(self, app):
        self.app = app
        self.seconds: dict[str, list[float]] = {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        family = family_of(scope["method"], scope["path"])

        async def timed_send(message):
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.seconds.setdefault(family, []).append(time.perf_counter() - started)
        await self.app(scope, receive, timed_send)


def family_of(method: str, path: str) -> str:
    if path == "/queue":
        return "queue page"
    if method == "POST" and path.endswith("/decide"):
        return "accept"
    if path.startswith("/task/") and path.count("/") == 3:
        return "task page"
    if path.startswith("/image/") and path.count("/") == 3:
        return "labelled image (first draw)"
    return "other"


def percentiles(values: list[float]) -> str:
    q = statistics.quantiles(values, n=100, method="inclusive")
    return f"p50 {1000 * statistics.median(values):6.1f} ms   p95 {1000 * q[94]:6.1f} ms   (n={len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=200, help="requests per measured page or action")
    parser.add_argument("--out", type=Path, help="build the run here (kept); default a temporary folder")
    args = parser.parse_args()
    scratch = None if args.out else tempfile.TemporaryDirectory(prefix="vischain-review-bench-")
    root = args.out or Path(scratch.name) / "run"

    started = time.perf_counter()
    build_run(root, args.tasks)
    rank(root)
    print(f"built {args.tasks} tasks in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    problems = validate_path(root).problems
    assert not problems, problems[:3]
    print(f"vischain validate: valid ({time.perf_counter() - started:.1f} s)")

    store = ReviewStore(root / "review.sqlite")
    _, token = store.add_reviewer("bench", "reviewer")
    started = time.perf_counter()
    timed = Timed(create_app(root, quiz_threshold=0.75))
    print(f"server start (catalogue of {args.tasks} tasks): {time.perf_counter() - started:.2f} s")
    client_seconds: dict[str, list[float]] = {}
    with ThreadedServer(timed) as server, httpx.Client(base_url=server.url) as client:
        page = client.get(f"/login?token={token}")
        csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
        client.post("/login", data={"csrf": csrf, "token": token})
        csrf = client.get("/queue").text.split('name="csrf" value="')[1].split('"')[0]
        entries = [json.loads(line) for line in (root / "verify" / "priority.jsonl").read_text().splitlines()]
        picked = random.Random(1).sample(entries, 2 * args.requests)
        timed.seconds.clear()

        def timed_request(family: str, method: str, url: str, **kwargs) -> httpx.Response:
            begun = time.perf_counter()
            response = client.request(method, url, **kwargs)
            client_seconds.setdefault(family, []).append(time.perf_counter() - begun)
            assert response.status_code == 200, (url, response.status_code)
            return response

        for n in range(args.requests):
            filters = ["", "?status=pending", "?kind=icir", f"?page={n % 5 + 1}"][n % 4]
            timed_request("queue page", "GET", f"/queue{filters}")
        for entry in picked[:args.requests]:
            page = timed_request("task page", "GET", f"/task/{entry['kind']}/{entry['task_id']}")
        for image in page.text.split('src="/image/')[1:]:  # the last task page's labelled candidates
            url = "/image/" + image.split('"')[0]
            if url.count("/") == 3:
                client.get(url)
        for entry in picked[args.requests:]:
            timed_request("accept", "POST", f"/task/{entry['kind']}/{entry['task_id']}/decide",
                          data={"csrf": csrf, "action": "accept", "revision": "1", "view": "row"},
                          headers={"hx-request": "true"})
    accepted = sum(s.status == "accepted" for s in ReviewStore(root / "review.sqlite").states().values())
    assert accepted == args.requests, accepted
    print(f"\n{args.tasks} tasks, one request at a time, server time (inside the app):")
    for family in ("queue page", "task page", "accept", "labelled image (first draw)"):
        if family in timed.seconds:
            print(f"  {family:28s} {percentiles(timed.seconds[family])}")
    print("client time (adds HTTP over 127.0.0.1):")
    for family, values in client_seconds.items():
        print(f"  {family:28s} {percentiles(values)}")
    if scratch:
        scratch.cleanup()


if __name__ == "__main__":
    main()
