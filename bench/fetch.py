"""Benchmark: our fetcher against img2dataset on the same local URLs at the same concurrency.

    .venv/bin/python bench/fetch.py [--images 1000] [--concurrency 16] [--repeat 3] [--img2dataset-python PY]

N distinct photo-like 640x480 JPEGs are served by `python -m http.server` on 127.0.0.1, in its own
process on its own core. Each downloader is pinned to the remaining cores and fetches every URL:

- ours: `agents.retrieval.fetch.Fetcher` with every check on: address guard, manual redirects, byte cap,
  sniffing, pixel cap, full entropy decode, segment walk (metadata and trailing bytes dropped),
  SHA-256, pHash, duplicate check, atomic write. These JPEGs are upright 8-bit RGB with no metadata,
  so the walk keeps every byte and ours stores them as served (decoded at 1/8 scale for pHash);
- img2dataset (rom1504/img2dataset: urllib + OpenCV), `resize_mode=no` (full-size decode and
  re-encode at quality 92) and its default (resize to 256 px with a border);
- plain httpx: download and write, no checks: the floor every checker pays for.

Each row is the median of --repeat interleaved rounds: images/s over the download phase
(img2dataset: its shard duration, so its start-up is not counted), the same per pinned core, and
images per CPU-second (every thread and child process; img2dataset's fixed start-up CPU, measured
on a one-URL run, is subtracted). Images per CPU-second is images/s per fully busy core; it is
the ratio we report, and the figure least moved by other work on a shared machine.

img2dataset pins pandas<3 (this project has pandas 3), so it lives in its own virtual environment:

    python3 -m venv /tmp/i2d-venv && /tmp/i2d-venv/bin/pip install img2dataset==1.47.0
    .venv/bin/python bench/fetch.py --img2dataset-python /tmp/i2d-venv/bin/python

Without one (flag, IMG2DATASET_PYTHON, or img2dataset importable here) the bench says so and
compares against the plain-httpx baseline only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image, ImageDraw, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from agents.retrieval.fetch import Fetcher, FetchPolicy, Kept  # noqa: E402
from agents.retrieval.search.candidate import Candidate  # noqa: E402
from schemas.licences import Licence  # noqa: E402


def make_images(folder: Path, count: int, size=(640, 480)) -> list[str]:
    """Distinct photo-like JPEGs (gradient, shapes, sensor noise): about 60-90 kB each, like web photos."""
    rng = random.Random(0)
    noise = np.random.default_rng(0)
    names = []
    x = np.linspace(0, 1, size[0])[None, :, None]
    y = np.linspace(0, 1, size[1])[:, None, None]
    for index in range(count):
        tint = np.array([rng.random() for _ in range(3)])[None, None, :]
        base = 255 * (0.5 * x * tint + 0.5 * y * (1 - tint))  # broadcasts to height x width x 3
        image = Image.fromarray(base.astype(np.uint8))
        draw = ImageDraw.Draw(image)
        for _ in range(12):
            cx, cy, r = rng.randrange(size[0]), rng.randrange(size[1]), rng.randrange(20, 140)
            draw.ellipse([cx - r, cy - r // 2, cx + r, cy + r // 2], fill=tuple(rng.randrange(256) for _ in range(3)))
        pixels = np.asarray(image.filter(ImageFilter.GaussianBlur(2)), dtype=np.int16)
        pixels = (pixels + noise.normal(0, 6, pixels.shape)).clip(0, 255).astype(np.uint8)
        name = f"img{index:05d}.jpg"
        Image.fromarray(pixels).save(folder / name, quality=85)
        names.append(name)
    return names


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(folder: Path, cores: set[int]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                               "--directory", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              preexec_fn=lambda: os.sched_setaffinity(0, cores))
    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1, trust_env=False)
            return server, f"http://127.0.0.1:{port}"
        except httpx.TransportError:
            time.sleep(0.05)
    server.kill()
    raise RuntimeError("the local image server did not start")


def cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_ours(urls: list[str], out: Path, concurrency: int) -> dict:
    licence = Licence("cc0", "1.0", verified=True)
    candidates = [Candidate(url=u, page_url=None, title=None, provider="openverse", licence=licence) for u in urls]
    # Every check on; loopback allowed because the server is local; one host, so per_host = concurrency.
    policy = FetchPolicy(allow_loopback=True, concurrency=concurrency, per_host=concurrency)

    async def fetch():
        async with Fetcher(out, policy) as fetcher:
            return await fetcher.fetch_all(candidates, "images")
    cpu, started = cpu_self(), time.perf_counter()
    outcomes = asyncio.run(fetch())
    seconds, cpu = time.perf_counter() - started, cpu_self() - cpu
    kept = sum(isinstance(o, Kept) for o in outcomes)
    reasons = sorted({o.reason for o in outcomes if not isinstance(o, Kept)})
    return {"images": kept, "seconds": seconds, "cpu": cpu, "wall": seconds, "notes": reasons[:3]}


def run_plain_httpx(urls: list[str], out: Path, concurrency: int) -> dict:
    out.mkdir(parents=True, exist_ok=True)

    async def fetch():
        slots = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(trust_env=False, limits=httpx.Limits(max_connections=concurrency)) as http:
            async def one(index, url):
                async with slots:
                    response = await http.get(url)
                await asyncio.to_thread((out / f"{index}.jpg").write_bytes, response.content)
                return response.status_code == 200
            return await asyncio.gather(*(one(i, u) for i, u in enumerate(urls)))
    cpu, started = cpu_self(), time.perf_counter()
    ok = asyncio.run(fetch())
    seconds = time.perf_counter() - started
    return {"images": sum(ok), "seconds": seconds, "cpu": cpu_self() - cpu, "wall": seconds, "notes": []}


def run_img2dataset(python: str, urls: list[str], out: Path, concurrency: int, cores: set[int], mode: str) -> dict:
    """One img2dataset run; its start-up CPU (imports, processes) is taken off with a one-URL run."""
    startup = _img2dataset_once(python, urls[:1], out.with_name(out.name + "-startup"), concurrency, cores, mode)
    result = _img2dataset_once(python, urls, out, concurrency, cores, mode)
    return {**result, "cpu": result["cpu"] - startup["cpu"]}


def _img2dataset_once(python: str, urls: list[str], out: Path, concurrency: int, cores: set[int], mode: str) -> dict:
    url_list = out.parent / f"urls-{out.name}.txt"
    url_list.write_text("\n".join(urls) + "\n")
    options = dict(url_list=str(url_list), output_folder=str(out), processes_count=1, thread_count=concurrency,
                   output_format="files", input_format="txt", timeout=10, retries=0, enable_wandb=False,
                   compute_hash="sha256", disallowed_header_directives=[])
    if mode == "no-resize":
        options.update(resize_mode="no", encode_quality=92)  # full-size decode and re-encode, like ours
    code = f"from img2dataset import download; download(**{options!r})"
    cpu, started = cpu_children(), time.perf_counter()
    # albumentations asks PyPI for a newer version on import unless told not to: nothing leaves 127.0.0.1.
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "WANDB_MODE": "disabled"}
    subprocess.run([python, "-c", code], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=env, preexec_fn=lambda: os.sched_setaffinity(0, cores))
    wall, cpu = time.perf_counter() - started, cpu_children() - cpu
    stats = [json.loads(p.read_text()) for p in out.glob("*_stats.json")]
    return {"images": sum(s["successes"] for s in stats), "seconds": sum(s["duration"] for s in stats), "cpu": cpu,
            "wall": wall, "notes": [f"{k}: {v}" for s in stats for k, v in s["status_dict"].items() if k != "success"]}


def find_img2dataset(flag: str | None) -> str | None:
    for python in (flag, os.environ.get("IMG2DATASET_PYTHON")):
        if python:
            return python
    try:
        import img2dataset  # noqa: F401
        return sys.executable
    except ImportError:
        return None


def median_result(results: list[dict]) -> dict:
    """The run with the median images per CPU-second (runs are interleaved, so drift hits all alike)."""
    ranked = sorted(results, key=lambda r: r["images"] / r["cpu"] if r["cpu"] else 0.0)
    return ranked[len(ranked) // 2]


def report(name: str, result: dict, cores: int) -> tuple[float, float]:
    """Prints one row; returns (images/s per pinned core, images per CPU-second)."""
    rate = result["images"] / result["seconds"]
    per_cpu = result["images"] / result["cpu"] if result["cpu"] else float("nan")
    print(f"{name:30s} {result['images']:6d} {rate:9.1f} {rate / cores:10.1f} {per_cpu:11.1f} {result['wall']:8.2f}s"
          + (f"   ({'; '.join(result['notes'])})" if result["notes"] else ""))
    return rate / cores, per_cpu


def compare(urls: list[str], work: Path, args, cores: set[int]) -> None:
    python = find_img2dataset(args.img2dataset_python)
    runners = {"vischain fetcher (all checks)": lambda out: run_ours(urls, out, args.concurrency),
               "plain httpx (no checks)": lambda out: run_plain_httpx(urls, out, args.concurrency)}
    if python is not None:
        for mode in ("no-resize", "default"):
            runners[f"img2dataset ({mode})"] = (
                lambda out, mode=mode: run_img2dataset(python, urls, out, args.concurrency, cores, mode))
    runs: dict[str, list[dict]] = {name: [] for name in runners}
    for round_ in range(args.repeat):
        for index, (name, runner) in enumerate(runners.items()):
            runs[name].append(runner(work / f"run{round_}-{index}"))
            shutil.rmtree(work / f"run{round_}-{index}", ignore_errors=True)
    print(f"{'downloader (median of ' + str(args.repeat) + ')':30s} {'kept':>6s} {'images/s':>9s} "
          f"{'per core':>10s} {'per CPU-s':>11s} {'wall':>9s}")
    rows = {name: report(name, median_result(results), len(cores)) for name, results in runs.items()}
    ours, plain = rows["vischain fetcher (all checks)"], rows["plain httpx (no checks)"]
    if python is None:
        print("\nimg2dataset is not available (it needs pandas<3; see this file's docstring for a separate venv);"
              f"\ncomparing with plain httpx instead: ours / plain httpx = {ours[1] / plain[1]:.2f} per CPU-second, "
              f"{ours[0] / plain[0]:.2f} per pinned core")
        return
    like, default = rows["img2dataset (no-resize)"], rows["img2dataset (default)"]
    print(f"\nours / img2dataset, images per CPU-second: {ours[1] / like[1]:.2f} (like-for-like, no resize), "
          f"{ours[1] / default[1]:.2f} (its default 256 px resize)")
    print(f"ours / img2dataset, images/s per pinned core: {ours[0] / like[0]:.2f} (no resize), "
          f"{ours[0] / default[0]:.2f} (default)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; each row is the median round")
    parser.add_argument("--img2dataset-python", help="a Python that can import img2dataset")
    args = parser.parse_args()
    available = sorted(os.sched_getaffinity(0))
    server_cores = {available[-1]}  # the server gets one core, the downloaders the rest
    fetch_cores = set(available[:-1]) or server_cores
    os.sched_setaffinity(0, fetch_cores)
    work = Path(tempfile.mkdtemp(prefix="vischain-bench-"))
    try:
        (work / "www").mkdir()
        urls_names = make_images(work / "www", args.images)
        server, base = start_server(work / "www", server_cores)
        urls = [f"{base}/{name}" for name in urls_names]
        try:
            run_plain_httpx(urls[:20], work / "warm", args.concurrency)  # the server's page cache
            run_ours(urls[:20], work / "warm-ours", args.concurrency)  # our lazy imports (scipy in imagehash)
            print(f"{len(urls)} images of 640x480 JPEG, concurrency {args.concurrency}, "
                  f"downloaders pinned to {len(fetch_cores)} core(s), server on its own core\n")
            compare(urls, work, args, fetch_cores)
        finally:
            server.terminate()
            server.wait()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
