"""Generate throughput: the real graph, checkpointer, cache and fetcher against agents with a fixed latency.

    .venv/bin/python bench/orchestration.py [--latency 0.2] [--tasks 64] [--concurrency 32]

A local OpenAI-compatible server (bench/agent_server.py, in its own process so its CPU is not
ours) plays planner, keywords and validator, answering each call after `latency` seconds. Images
come from a folder of drawn 256 px pictures (the `folder` provider, decoded and hashed by the real
fetcher); every image is accepted, so nothing is painted. The baseline is the same pipeline at
concurrency 1, measured in the same run.

A task's slots run concurrently, so its critical path is three calls (plan, keywords, verdict):
the ideal rate is concurrency / (3 x latency). Our CPU time is this process's (all threads)
divided by the tasks made. Targets: >= 15x serial, >= 80% of ideal, <= 50 ms CPU per task.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.agent_server import scripted_profile  # noqa: E402
from benchmark_data.drawings import write_demo_images  # noqa: E402
from vischain.generate_command import check_request, open_run  # noqa: E402
from vischain.generate_runner import run_tasks  # noqa: E402

CRITICAL_PATH_CALLS = 3


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([sys.executable, str(ROOT / "bench" / "agent_server.py"), "--latency", str(latency)],
                               stdout=subprocess.PIPE, text=True)
    return process, process.stdout.readline().strip()


def measure(work: Path, profile: Path, tasks: int, concurrency: int, name: str) -> dict:
    request = check_request("engineering", tasks, "mixed", "local", profile, work / name, concurrency, 0, None)
    store = open_run(request)
    wall, cpu = time.perf_counter(), time.process_time()
    summary = asyncio.run(run_tasks(store, request["profile"], request["specs"], domain="engineering",
                                    concurrency=concurrency))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    made = sum(summary.done.values())
    assert made == tasks and summary.painted == 0, (summary.done, summary.failed, summary.failures[:2])
    return {"tasks": made, "seconds": wall, "rate": made / wall, "cpu_ms": 1000 * cpu / made,
            "calls": summary.model_calls}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--tasks", type=int, default=64, help="tasks at the high concurrency")
    parser.add_argument("--serial-tasks", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    server, url = start_server(args.latency)
    try:
        with tempfile.TemporaryDirectory(prefix="vischain-orch-") as tmp:
            work = Path(tmp)
            images = work / "images"
            write_demo_images(images, count=12 * (args.tasks + args.serial_tasks))
            profile = scripted_profile(work, url, images=images, concurrency=1024, candidates_per_slot=1)
            serial = measure(work, profile, args.serial_tasks, 1, "serial")
            wide = measure(work, profile, args.tasks, args.concurrency, "wide")
    finally:
        server.kill()
    report(args, serial, wide)


def report(args, serial: dict, wide: dict) -> None:
    ideal = args.concurrency / (CRITICAL_PATH_CALLS * args.latency)
    ratio, share = wide["rate"] / serial["rate"], wide["rate"] / ideal
    print(f"latency {args.latency * 1000:.0f} ms per call; {wide['calls'] / wide['tasks']:.1f} model calls per task")
    print(f"concurrency 1 : {serial['tasks']:4d} tasks in {serial['seconds']:6.2f} s = {serial['rate']:6.2f} tasks/s, "
          f"CPU {serial['cpu_ms']:5.1f} ms/task")
    print(f"concurrency {args.concurrency}: {wide['tasks']:4d} tasks in {wide['seconds']:6.2f} s = "
          f"{wide['rate']:6.2f} tasks/s, CPU {wide['cpu_ms']:5.1f} ms/task")
    print(f"ratio vs concurrency 1: {ratio:5.1f}x   (target >= 15x)  {'ok' if ratio >= 15 else 'MISS'}")
    print(f"ideal {ideal:.1f} tasks/s: {100 * share:5.1f}% of ideal (target >= 80%)  {'ok' if share >= 0.8 else 'MISS'}")
    print(f"own CPU {wide['cpu_ms']:.1f} ms/task (target <= 50 ms)  {'ok' if wide['cpu_ms'] <= 50 else 'MISS'}")


if __name__ == "__main__":
    main()
