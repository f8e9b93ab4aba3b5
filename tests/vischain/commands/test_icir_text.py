"""`--icir-text none|full` on eval and verify: which ICIR words a model sees, recorded with every
answer and score, and the two settings' answers never mixed."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from schemas.task import load_tasks
from tests.oracle_runs import Oracle, make_run
from vischain.cli import app

runner = CliRunner()
WIDE = {"COLUMNS": "200"}


def user_texts(body: dict) -> str:
    return "\n".join(p["text"] for m in body["messages"] if m["role"] == "user" for p in m["content"]
                     if p["type"] == "text")


def test_each_setting_is_recorded_and_scored_apart(tmp_path):
    root = make_run(tmp_path / "run")
    icir = next(item for item in load_tasks(root) if item.kind == "icir")
    statement, step_words = icir.task["task"], icir.task["steps"][0]["description"]
    # Right without the words, wrong with them: the two scores can only differ if kept apart.
    with Oracle(load_tasks(root), tmp_path / "labels") as oracle:
        bare = runner.invoke(app, ["eval", str(root), "--model", f"openai:m@{oracle.server.base_url}"], env=WIDE)
        asked_bare = len(oracle.bodies)
        oracle.policy = lambda model, task, q: "wrong" if task.startswith("icir") else "right"
        full = runner.invoke(app, ["eval", str(root), "--model", f"openai:m@{oracle.server.base_url}",
                                   "--icir-text", "full"], env=WIDE)
    assert bare.exit_code == 0 and full.exit_code == 0, bare.output + full.output
    assert "icir-text=none" in bare.output and "icir-text=full" in full.output
    assert not any(statement in user_texts(b) or step_words in user_texts(b) for b in oracle.bodies[:asked_bare])
    assert any(statement in user_texts(b) and step_words in user_texts(b) for b in oracle.bodies[asked_bare:])
    # Only the ICIR question is asked again: the other kinds' conversations are the same, so cached.
    assert len(oracle.bodies) - asked_bare == 1
    lines = [json.loads(s) for s in (root / "verify" / "answers.jsonl").read_text().splitlines()]
    assert {line["icir_text"] for line in lines} == {"none", "full"} and len(lines) == 2 * 5
    scores = json.loads((root / "verify" / "scores.json").read_text())
    assert scores["icir_text"] == "full"
    assert scores["scores"]["openai:m"]["by_kind"]["icir"]["ca"] == 0.0  # only full's answers
    assert scores["scores"]["openai:m"]["by_kind"]["itmr"]["ca"] == 1.0


@pytest.mark.parametrize("command", ["eval", "verify"])
def test_an_unknown_icir_text_is_one_line_exit_2(tmp_path, command):
    root = make_run(tmp_path / "run")
    result = runner.invoke(app, [command, str(root), "--model", "openai:m@http://127.0.0.1:9/v1",
                                 "--icir-text", "some"], env=WIDE)
    assert result.exit_code == 2, result.output
    assert "--icir-text: 'some' is not one of none, full" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (root / "verify").exists()
