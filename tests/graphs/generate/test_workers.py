"""Several workers on one run, on each store: every task made once, a valid run, no call twice;
a worker killed mid-run has its tasks finished by another; the database restarting mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agents.backends.scripted_server import AgentServer, scripted_profile
from tests.generate_helpers import assert_run_valid

REPO = Path(__file__).parents[3]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO), "COLUMNS": "200"}
TASKS = 6


def generate_args(profile: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "vischain.cli", "generate", "--domain", "engineering", "--config", str(profile),
            "--tasks", str(TASKS), "--concurrency", "2", "--out", str(out), *extra]


def store_flags(request, store: str) -> list[str]:
    return ["--store", request.getfixturevalue("postgres").url] if store == "postgres" else []


def assert_made_once(out: Path) -> None:
    store = assert_run_valid(out)
    ids = [ref.task_id for ref in store.tasks()]
    assert len(ids) == len(set(ids)) == TASKS and store.read_jsonl("failures.jsonl") == []
    validate = subprocess.run([sys.executable, "-m", "vischain.cli", "validate", str(out)], env=ENV, cwd=REPO,
                              capture_output=True, text=True)
    assert validate.returncode == 0, validate.stdout[-2000:]


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_two_workers_make_every_task_once_and_never_repeat_a_call(request, store, tiny_models, drawn_image_folder,
                                                                   tmp_path):
    out = tmp_path / "run"
    with AgentServer(latency=0.05) as server:
        profile = scripted_profile(tmp_path, server.base_url, images=drawn_image_folder)
        result = subprocess.run(generate_args(profile, out, "--workers", "2", *store_flags(request, store)),
                                env=ENV, cwd=REPO, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        assert max(server.answered.values()) == 1  # no model call made twice, by either worker
    assert_made_once(out)
    status = subprocess.run([sys.executable, "-m", "vischain.cli", "status", str(out), *store_flags(request, store)],
                            env=ENV, cwd=REPO, capture_output=True, text=True)
    assert status.returncode == 0 and f"complete · done {TASKS} · running 0" in status.stdout


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_a_killed_workers_tasks_are_finished_by_the_other_after_its_lease(request, store, tiny_models,
                                                                          drawn_image_folder, tmp_path):
    """Two machines' worth of workers: two commands on one run. One is killed; the other takes over."""
    out = tmp_path / "run"
    with AgentServer(latency=0.2) as server:
        profile = scripted_profile(tmp_path, server.base_url, images=drawn_image_folder)
        args = generate_args(profile, out, "--lease", "5", *store_flags(request, store))
        first = subprocess.Popen(args, env=ENV, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while not (out / "state.sqlite").exists() and not server.answered and time.monotonic() < deadline:
            time.sleep(0.1)
        second = subprocess.Popen(args, env=ENV, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        while sum(server.agents.values()) < 6 and time.monotonic() < deadline:  # both are working
            time.sleep(0.1)
        first.send_signal(signal.SIGKILL)
        first.wait()
        stdout, stderr = second.communicate(timeout=600)
        failures = (out / "failures.jsonl").read_text() if (out / "failures.jsonl").exists() else ""
        assert second.returncode == 0, stdout[-2000:] + stderr[-2000:] + failures
    assert_made_once(out)


def test_a_database_restart_mid_run_is_waited_out(postgres, tiny_models, drawn_image_folder, tmp_path):
    out = tmp_path / "run"
    with AgentServer(latency=0.2) as server:
        profile = scripted_profile(tmp_path, server.base_url, images=drawn_image_folder)
        process = subprocess.Popen(generate_args(profile, out, "--store", postgres.url), env=ENV, cwd=REPO,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 300
        while sum(server.agents.values()) < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        postgres.restart()
        stdout, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stdout[-2000:] + stderr[-2000:]
    assert_made_once(out)


def test_an_unreachable_database_at_start_is_one_line_and_exit_2(tmp_path):
    result = subprocess.run([sys.executable, "-m", "vischain.cli", "generate", "--domain", "daily", "--profile",
                             "demo", "--out", str(tmp_path / "run"), "--store", "postgresql://nobody@127.0.0.1:9/x"],
                            env=ENV, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert len(lines) == 1 and "--store: cannot reach postgresql://nobody@127.0.0.1:9/x" in lines[0]
    assert not (tmp_path / "run").exists()
