"""`vischain generate` end to end: the real graph, checkpointer, cache and backends, local endpoints only."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agents.backends.scripted_server import FAULTS, AgentServer, scripted_profile
from schemas.run_store import RunStore
from tests.generate_helpers import assert_run_valid, folder_snapshot
from vischain.cli import app

runner = CliRunner()
REPO = Path(__file__).parents[3]


def generate(*args: str):
    return runner.invoke(app, ["generate", *args])


def test_demo_profile_end_to_end_with_tiny_models(tiny_models, tmp_path):
    out = tmp_path / "demo"
    result = generate("--domain", "engineering", "--profile", "demo", "--tasks", "3", "--out", str(out))
    assert result.exit_code == 0, result.output
    store = assert_run_valid(out)
    assert {ref.kind for ref in store.tasks()} == {"itmr", "icir", "iomr"}
    lines = store.read_jsonl("provenance.jsonl")
    assert any(line["synthetic"] for line in lines)  # a random validator rejects some images: painted
    assert runner.invoke(app, ["validate", str(out)]).exit_code == 0
    run = store.run
    assert run["config"]["models"]["planner"] == "tiny:llama" and len(run["config"]["prompts_hash"]) == 64
    before = folder_snapshot(out / "tasks")
    again = generate("--domain", "engineering", "--profile", "demo", "--tasks", "3", "--out", str(out))
    assert again.exit_code == 0 and "model calls: 0" in again.output
    assert folder_snapshot(out / "tasks") == before


def test_rejected_images_are_searched_again_then_painted(tiny_models, tmp_path):
    with AgentServer(reject_every=1) as server:  # the validator says no to everything
        profile = scripted_profile(tmp_path, server.base_url, refine_rounds=2)
        result = generate("--domain", "daily", "--config", str(profile), "--tasks", "1", "--kind", "itmr",
                          "--out", str(tmp_path / "run"))
        assert result.exit_code == 0, result.output
    store = assert_run_valid(tmp_path / "run")
    lines = store.read_jsonl("provenance.jsonl")
    assert lines and all(line["synthetic"] for line in lines)
    assert server.agents["keywords"] == 3  # 1 + R rounds, each one call for all open slots; then the painter
    assert server.agents["plan"] == 1
    assert server.agents["verdict"] > 0


def test_twenty_percent_faults_every_task_valid_or_recorded(tiny_models, drawn_image_folder, tmp_path):
    out = tmp_path / "run"
    with AgentServer(fault_rate=0.2, seed=3, slow_seconds=1.5) as server:
        profile = scripted_profile(tmp_path, server.base_url, timeout=0.5, retries=4, images=drawn_image_folder)
        result = generate("--domain", "engineering", "--config", str(profile), "--tasks", "6",
                          "--concurrency", "6", "--out", str(out))
    assert sum(server.faults.values()) >= 5 and len(server.faults) >= 3, server.faults
    assert set(server.faults) <= set(FAULTS)
    store = assert_run_valid(out)
    failed = {line["task_id"]: line for line in store.read_jsonl("failures.jsonl")}
    done = {ref.task_id for ref in store.tasks()}
    assert len(done) + len(failed) == 6 and not done & set(failed)
    assert len(done) >= 3
    # A script can tell: exit 0 only when every requested task was made, and the summary says why not.
    assert result.exit_code == (1 if failed else 0), result.output
    assert not failed or f"{len(failed)} of 6 requested task(s) were not made" in result.output
    assert all(line["stage"] and line["reason"] for line in failed.values())


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "vischain.cli", "generate", *args]


def _kill_when(process: subprocess.Popen, ready, server: AgentServer, timeout: float = 120.0) -> int:
    """SIGKILL the process once `ready()` holds; returns how many answers it may not have cached.

    Those are the requests in flight at the kill and the answers of the last 0.5 s before it (a
    reply read but not yet written to the cache); only they may be asked again after a resume.
    """
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, "generate finished before the kill point"
        assert time.monotonic() < deadline, "kill point never reached"
        time.sleep(0.02)
    in_flight, killed_at = server.in_flight, time.monotonic()
    process.send_signal(signal.SIGKILL)
    process.wait()
    return in_flight + sum(killed_at - 0.5 <= t <= killed_at for t in server.answer_times)


def test_sigkill_at_several_points_then_resume(tiny_models, drawn_image_folder, tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    with AgentServer(latency=0.05) as server:
        profile = scripted_profile(tmp_path, server.base_url, images=drawn_image_folder)
        args = _cli("--domain", "engineering", "--config", str(profile), "--tasks", "6", "--concurrency", "2",
                    "--out", str(out))
        tasks = lambda: len(list(out.glob("tasks/*/*/task.json")))  # noqa: E731
        answered = lambda: sum(server.answered.values())  # noqa: E731
        kill_points = [lambda: answered() >= 3, lambda: tasks() >= 1, lambda: tasks() >= 3]
        lost = 0
        for ready in kill_points:
            process = subprocess.Popen(args, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            lost += _kill_when(process, ready, server)
        final = subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
        assert final.returncode == 0, final.stderr[-2000:]
    store = assert_run_valid(out)
    ids = sorted(ref.task_id for ref in store.tasks())
    assert len(ids) == len(set(ids)) == 6 and store.read_jsonl("failures.jsonl") == []
    assert not [p for p in out.glob("tasks/*/.*")]  # no half-written task folder left
    repeated = sum(count - 1 for count in server.answered.values())
    assert repeated <= lost, f"{repeated} model calls repeated, only {lost} were in flight at the kills"


@pytest.mark.parametrize("args, message", [
    (["--domain", "gardening"], "--domain: unknown domain 'gardening'"),
    (["--domain", "daily", "--profile", "huge"], "--profile: unknown profile 'huge'"),
    (["--domain", "daily", "--shard", "3/2"], "--shard: expected 1 <= I <= N"),
    (["--domain", "daily", "--kind", "video"], "--kind: expected one of"),
])
def test_bad_flags_exit_2_with_one_line_and_write_nothing(tmp_path, args, message):
    out = tmp_path / "run"
    result = generate(*args, "--out", str(out))
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def test_unwritable_out_folder_is_refused(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    result = generate("--domain", "daily", "--profile", "demo", "--out", str(blocker / "run"))
    assert result.exit_code == 2 and "--out: cannot create" in result.output
    assert blocker.read_text() == "not a folder"


def test_out_folder_of_another_config_is_left_untouched(tmp_path):
    out = tmp_path / "run"
    RunStore.create(out, {"domain": "daily", "kind": "mixed", "tasks": 3, "seed": 0, "shard": "1/1",
                          "profile_config": {"name": "other"}})
    (out / "failures.jsonl").write_text(json.dumps({"task_id": "x", "stage": "plan", "reason": "r"}) + "\n")
    before = folder_snapshot(out)
    result = generate("--domain", "daily", "--profile", "demo", "--tasks", "3", "--out", str(out))
    assert result.exit_code == 2 and "made by another config (profile_config differs" in result.output
    assert folder_snapshot(out) == before
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    result = generate("--domain", "daily", "--profile", "demo", "--out", str(stranger))
    assert result.exit_code == 2 and "is not empty and is not a run folder" in result.output
    assert folder_snapshot(stranger) == {"notes.txt": folder_snapshot(stranger)["notes.txt"]}


def test_a_server_that_drops_response_format_fails_every_task_with_one_hint(tmp_path):
    """Every reply is prose: each task fails, the exit code says so, and the cause is said once."""
    from tests.servers import FaultyEndpoint, completion

    with FaultyEndpoint(completion("Sure! Here is a plan for your task.")) as endpoint:
        profile = scripted_profile(tmp_path, endpoint.base_url, retries=1)
        result = runner.invoke(app, ["generate", "--domain", "daily", "--config", str(profile), "--tasks", "2",
                                     "--out", str(tmp_path / "r")], env={"COLUMNS": "400"})
    assert result.exit_code == 1
    assert result.output.count("may not honour response_format") == 1
    assert "2 task(s) failed" in result.output and endpoint.base_url in result.output
    assert "2 of 2 requested task(s) were not made" in result.output


def test_a_prompt_that_cannot_fit_its_model_stops_the_run_before_any_call(tiny_models, tmp_path):
    """The preflight counts each agent's largest prompt with its model's processor and template."""
    profile = tmp_path / "long.yaml"
    profile.write_text((REPO / "benchmark_data" / "profiles" / "demo.yaml").read_text()
                       .replace("max_new_tokens: 1500", "max_new_tokens: 100000")
                       .replace("folder: demo_images", f"folder: {REPO / 'benchmark_data' / 'demo_images'}"))
    result = runner.invoke(app, ["generate", "--domain", "daily", "--config", str(profile), "--tasks", "1",
                                 "--out", str(tmp_path / "run")], env={"COLUMNS": "400"})
    assert result.exit_code == 2
    line = result.output.strip().splitlines()[-1]
    assert "tiny:llama: the planner prompt of" in line and "over the model's limit of" in line
    assert not list((tmp_path / "run").glob("tasks/*/*"))
