import pytest

from agents.protocol.priority import FORMAT_ERROR_SHARE, loo_accuracy, rank_tasks
from agents.protocol.turns import task_script
from schemas.schema_check import require
from schemas.task import load_tasks
from tests.oracle_runs import make_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = make_run(tmp_path_factory.mktemp("verifier") / "run", per_kind=2)
    return root, load_tasks(root)


def answers(tasks, model, how):
    """One line per question of every task; how(task_id, question) -> "right" | "other" | "format" | "skip"."""
    lines = []
    for item in tasks:
        for q in task_script(item).questions:
            mode = how(item.task_id, q.number)
            other = next(label for label, _ in q.choices if label != q.truth)
            label = {"right": q.truth, "other": other}.get(mode)
            lines.append({"model": model, "kind": item.kind, "task_id": item.task_id, "domain": item.domain,
                          "question": q.number, "reply": None if mode == "skip" else f"ANSWER: {label}",
                          "label": label, "truth": q.truth, "correct": mode == "right",
                          "format_error": mode == "format", "skipped": mode == "skip"})
    return lines


def test_leave_one_task_out_accuracy_is_laplace_smoothed():
    lines = [{"model": "m", "kind": "itmr", "task_id": t, "correct": c, "skipped": False}
             for t, c in [("a", True), ("a", True), ("b", False), ("b", False)]]
    lines.append({"model": "m", "kind": "itmr", "task_id": "b", "correct": False, "skipped": True})
    accuracy = loo_accuracy(lines)
    assert accuracy[("m", "itmr", "a")] == pytest.approx((0 + 1) / (2 + 2))
    assert accuracy[("m", "itmr", "b")] == pytest.approx((2 + 1) / (2 + 2))


def test_a_task_both_models_contradict_ranks_first_and_lines_match_the_schema(run):
    root, tasks = run
    suspect = "iomr-0002"
    good = answers(tasks, "good", lambda t, q: "other" if t == suspect else "right")
    weak = answers(tasks, "weak", lambda t, q: "other" if t in (suspect, "itmr-0001") and q == 1 else
                   "format" if t == "icir-0002" else "right")
    priority = rank_tasks(good + weak, tasks, {"good": 1.0, "weak": 1.0}, root)
    for entry in priority:
        require("priority", entry, "priority.jsonl")
    assert [e["rank"] for e in priority] == list(range(1, 7))
    assert [e["task_id"] for e in priority[:3]] == [suspect, "itmr-0001", "icir-0002"]
    assert all(e["score"] == 0 for e in priority[3:])
    top = priority[0]
    assert top["kind"] == "iomr" and top["domain"] == "engineering" and len(top["evidence"]) == 2
    assert all((root / image).is_file() for e in top["evidence"] for image in e["images"])
    first = top["evidence"][0]
    assert first["truth"] == "B" and [a["model"] for a in first["answers"]] == ["good", "weak"]
    assert all(a["answer"] == "A" and not a["correct"] for a in first["answers"])


def test_format_errors_count_less_than_contradictions(run):
    root, tasks = run
    lines = answers(tasks, "m", lambda t, q: "other" if (t, q) == ("itmr-0002", 1) else
                    "format" if t == "iomr-0001" else "right")
    priority = {e["task_id"]: e for e in rank_tasks(lines, tasks, {}, root)}
    contradicted, formats = priority["itmr-0002"]["score"], priority["iomr-0001"]["score"]
    assert formats < contradicted  # two format errors against one contradiction
    weight = priority["iomr-0001"]["evidence"][0]["answers"][0]["model_weight"]
    assert formats == pytest.approx(2 * FORMAT_ERROR_SHARE * weight, abs=1e-3)


def test_a_strong_models_disagreement_outweighs_a_weak_ones(run):
    root, tasks = run
    # "strong" is right everywhere except itmr-0001; "weak" is wrong on everything but icir tasks.
    strong = answers(tasks, "strong", lambda t, q: "other" if t == "itmr-0001" else "right")
    weak = answers(tasks, "weak", lambda t, q: "right" if t.startswith("icir") or t == "itmr-0001" else "other")
    priority = rank_tasks(strong + weak, tasks, {}, root)
    assert priority[0]["task_id"] == "itmr-0001"
    # A profile weight scales the model: weak x10 now outranks strong's lone disagreement.
    reweighted = rank_tasks(strong + weak, tasks, {"weak": 10.0}, root)
    assert reweighted[0]["task_id"] != "itmr-0001"
