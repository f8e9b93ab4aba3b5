"""Kill trials: `vischain generate` killed with SIGKILL at random moments, then resumed.

    .venv/bin/python bench/kill_trials.py [--trials 10] [--tasks 6] [--kills 2] [--seed 0]

Each trial starts a run against the scripted agent server (agents/backends/scripted_server.py,
in this process) and a folder of drawn images, kills it `--kills` times after random delays, then
lets it finish. A trial passes when: every requested task exists exactly once, `vischain validate`
passes (with its run-wide rules: no retrieved image in two slots, one provenance line per image, a
finished run), and one more run asks the models nothing. Slow (minutes); not part of the suite.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agents.backends.scripted_server import AgentServer, scripted_profile  # noqa: E402
from benchmark_data.drawings import write_demo_images  # noqa: E402

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "vischain.cli", *args]


def trial(work: Path, images: Path, number: int, tasks: int, kills: int, rng: random.Random) -> tuple[bool, str]:
    out = work / f"trial-{number}"
    with AgentServer(latency=0.02, reject_every=2, seed=number) as server:
        profile = scripted_profile(work, server.base_url, images=images, refine_rounds=1, candidates_per_slot=1)
        args = cli("generate", "--domain", "engineering", "--config", str(profile), "--tasks", str(tasks),
                   "--concurrency", "3", "--seed", str(number), "--out", str(out))
        for _ in range(kills):
            process = subprocess.Popen(args, env=ENV, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(2.0, 9.0))  # start-up (imports, models) takes a few seconds
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
            process.wait()
        finished = subprocess.run(args, env=ENV, cwd=ROOT, capture_output=True, text=True)
        if finished.returncode != 0:
            return False, f"resume exited {finished.returncode}: {finished.stderr[-300:]}"
        asked = sum(server.answered.values())
        again = subprocess.run(args, env=ENV, cwd=ROOT, capture_output=True, text=True)
        if again.returncode != 0 or sum(server.answered.values()) != asked:
            return False, "a run after the finished one asked the models again"
    made = sorted(p.parent.name for p in out.glob("tasks/*/*/task.json"))
    if len(made) != tasks or len(set(made)) != tasks:
        return False, f"tasks made: {made}"
    validate = subprocess.run(cli("validate", str(out)), env=ENV, cwd=ROOT, capture_output=True, text=True)
    if validate.returncode != 0:
        return False, "validate: " + " ".join(validate.stdout.split())[-400:]
    return True, f"{len(made)} tasks, valid"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--tasks", type=int, default=6)
    parser.add_argument("--kills", type=int, default=2, help="kills per trial before it may finish")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="vischain-kills-") as scratch:
        work = Path(scratch)
        write_demo_images(work / "images", count=150)
        passed = 0
        for number in range(1, args.trials + 1):
            ok, detail = trial(work, work / "images", number, args.tasks, args.kills, rng)
            passed += ok
            print(f"trial {number:2d}: {'pass' if ok else 'FAIL'}  {detail}", flush=True)
    print(f"{passed} of {args.trials} trials passed ({args.kills} random kills each, {args.tasks} tasks)")


if __name__ == "__main__":
    main()
