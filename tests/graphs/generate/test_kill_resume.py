"""kill -9 at three moments of a generate run, then resume: every task once, a valid run, no call twice.

The moments are exact (tests/kill_at.py patches only the launcher): after an image claim is
committed but before its file is written (during fetch), after a painted file is written but before
its slot is checkpointed (during paint), and after a node's writes are saved but before the
checkpoint that applies them (between checkpoint writes).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agents.backends.scripted_server import AgentServer, scripted_profile
from tests.generate_helpers import assert_run_valid

REPO = Path(__file__).parents[3]


def run(args: list[str], kill: tuple[str, int] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    launcher = ["-m", "tests.kill_at", kill[0], str(kill[1])] if kill else ["-m", "vischain.cli"]
    return subprocess.run([sys.executable, *launcher, *args], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("moment, count", [("claim", 3), ("paint", 1), ("writes", 9)])
def test_a_kill_at_any_moment_resumes_into_a_valid_run(tiny_models, drawn_image_folder, tmp_path, moment, count):
    out = tmp_path / "run"
    # The validator rejects every second image and a slot fetches one a round: slots search again, and
    # some run out of rounds and are painted.
    with AgentServer(latency=0.01, reject_every=2) as server:
        profile = scripted_profile(tmp_path, server.base_url, images=drawn_image_folder, refine_rounds=1,
                                   candidates_per_slot=1)
        args = ["generate", "--domain", "engineering", "--config", str(profile), "--tasks", "4",
                "--concurrency", "2", "--out", str(out)]
        killed = run(args, kill=(moment, count))
        assert killed.returncode == -9, killed.stderr[-2000:]  # the kill happened, mid-run
        resumed = run(args)
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        asked = sum(server.answered.values())
        again = run(args)
        assert again.returncode == 0 and "model calls: 0" in again.stdout
        assert sum(server.answered.values()) == asked  # the third run asked the models nothing
    store = assert_run_valid(out)
    assert sorted(ref.task_id for ref in store.tasks()) == ["icir-0001", "iomr-0001", "itmr-0001", "itmr-0002"]
    validate = subprocess.run([sys.executable, "-m", "vischain.cli", "validate", str(out)], cwd=REPO,
                              env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True)
    assert validate.returncode == 0, validate.stdout[-3000:]
    if moment == "paint":
        assert any(line["synthetic"] for line in store.read_jsonl("provenance.jsonl"))
