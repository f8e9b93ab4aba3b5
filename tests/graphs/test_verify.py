"""The verify graph end to end against a scripted OpenAI-compatible server."""

import asyncio
import json

import pytest

from agents.backends.factory import ModelSpec
from agents.protocol.prompts import prompt_hash
from graphs.verify import AnswerLog, EvalSettings, run_verify
from schemas.task import load_tasks
from tests.oracle_runs import Oracle, make_run


def corrupt_itmr_truth(task_file):
    """Move question 1's `correct` flag to the next choice: the ground truth is now wrong."""
    task = json.loads(task_file.read_text())
    choices = task["questions"][0]["choices"]
    right = next(i for i, c in enumerate(choices) if c["correct"])
    choices[right]["correct"], choices[(right + 1) % len(choices)]["correct"] = False, True
    task_file.write_text(json.dumps(task))


def specs(url, *names):
    return [(ModelSpec(model=name, backend="openai", base_urls=(url,), concurrency=8), 1.0) for name in names]


def verify(root, url, *names, history="model"):
    settings = EvalSettings(history=history, concurrency=4)
    return asyncio.run(run_verify(root, root / "verify", load_tasks(root), specs(url, *names), settings, rank=True))


@pytest.fixture
def corrupted_run(tmp_path):
    root = make_run(tmp_path / "run", per_kind=3)
    oracle_policy = lambda model, task, q: ("wrong" if model == "weak" and task in ("iomr-0003", "icir-0002")
                                            else "format" if model == "weak" and task == "itmr-0003" else "right")
    oracle = Oracle(load_tasks(root), tmp_path / "oracle-labels", oracle_policy)  # truths read before corruption
    corrupt_itmr_truth(root / "tasks" / "itmr" / "itmr-0002" / "task.json")
    return root, oracle


def test_the_corrupted_task_tops_the_priority_list(corrupted_run):
    root, oracle = corrupted_run
    with oracle:
        result = verify(root, oracle.server.base_url, "good", "weak")
    priority = [json.loads(s) for s in (root / "verify" / "priority.jsonl").read_text().splitlines()]
    assert len(priority) == 9 and priority[0]["task_id"] == "itmr-0002" and priority[0]["kind"] == "itmr"
    assert {a["answer"] for a in priority[0]["evidence"][0]["answers"]} == {"1"}  # both say the old truth
    assert priority[0]["evidence"][0]["truth"] == "2"
    assert {e["task_id"] for e in priority[1:3]} == {"iomr-0003", "icir-0002"}
    assert result.new_answers == 2 * 15 and result.model_calls == 2 * 15  # 9 tasks, 15 questions, 2 models
    scores = json.loads((root / "verify" / "scores.json").read_text())
    assert scores["prompt_hash"] == prompt_hash() and set(scores["models"]) == {"openai:good", "openai:weak"}
    # good answers every question with the original truth: only the corrupted question is "wrong".
    assert scores["scores"]["openai:good"]["overall"]["ca"] == round(14 / 15, 4)
    assert scores["scores"]["openai:good"]["by_kind"]["itmr"]["tc"] == round(2 / 3, 4)


def test_a_second_run_asks_nothing_and_a_killed_run_resumes(corrupted_run):
    root, oracle = corrupted_run
    with oracle:
        verify(root, oracle.server.base_url, "good", "weak")
        asked = oracle.server.requests
        again = verify(root, oracle.server.base_url, "good", "weak")
        assert oracle.server.requests == asked and again.new_answers == 0 and again.model_calls == 0
        # Kill simulation: drop every line of one model on the IOMR tasks and leave a torn last line.
        path = root / "verify" / "answers.jsonl"
        lines = path.read_text().splitlines()
        kept = [s for s in lines if not ('"openai:weak"' in s and '"iomr"' in s)]
        path.write_text("\n".join(kept[:-1]) + "\n" + kept[-1][:20])
        (root / "verify" / "calls.sqlite").unlink()
        resumed = verify(root, oracle.server.base_url, "good", "weak")
    assert resumed.new_answers == 6 + 1  # 3 IOMR tasks x 2 steps, and the torn line
    log = AnswerLog(path)
    assert len(log.select(["openai:good", "openai:weak"], load_tasks(root), "model", "none")) == 30
    line = json.loads(path.read_text().splitlines()[0])
    assert set(line) >= {"task_id", "kind", "question", "model", "prompt_hash", "reply", "label", "truth",
                         "correct", "format_error"}


def test_gold_history_answers_are_kept_apart_from_model_history(tmp_path):
    root = make_run(tmp_path / "run", per_kind=1)
    with Oracle(load_tasks(root), tmp_path / "labels", lambda m, t, q: "wrong" if q == 1 else "right") as oracle:
        model = verify(root, oracle.server.base_url, "m")
        gold = verify(root, oracle.server.base_url, "m", history="gold")
        stop = verify(root, oracle.server.base_url, "m", history="stop_on_error")
    assert model.new_answers == gold.new_answers == stop.new_answers == 5
    scores = json.loads((root / "verify" / "scores.json").read_text())["scores"]["openai:m"]["overall"]
    # stop_on_error: every question 1 is wrong, so ITMR q2 and IOMR q2 are skipped: 0 right of 5.
    assert (scores["ca"], scores["tc"], scores["format_errors"]) == (0.0, 0.0, 0)
