"""The task model: every kind read as turns, the truth moved safely, the domain read one way."""

from __future__ import annotations

import json

import pytest

from benchmark_data import EXAMPLE_RUN
from schemas.rules import task_problems
from schemas.task import load_tasks, task_domain, task_turns, with_truth


def test_turns_of_the_example_run_give_labels_and_truths_as_the_protocol_draws_them():
    items = {item.kind: item for item in load_tasks(EXAMPLE_RUN)}
    assert [(t.truth, [c.label for c in t.choices]) for t in task_turns("itmr", items["itmr"].task)] == \
        [("1", ["1", "2", "3"]), ("2", ["1", "2", "3"])]
    icir = task_turns("icir", items["icir"].task)
    assert [t.example for t in icir] == [True, True, False]
    iomr = task_turns("iomr", items["iomr"].task)
    assert [t.truth for t in iomr] == ["B", "C"] and iomr[0].condition == "c1.png" and iomr[0].text is None


@pytest.mark.parametrize("kind", ["itmr", "icir", "iomr"])
def test_moving_the_truth_keeps_the_task_valid_and_changes_only_that_turn(kind, tmp_path):
    item = next(i for i in load_tasks(EXAMPLE_RUN) if i.kind == kind)
    first = task_turns(kind, item.task)[-1]
    other = next(c.label for c in first.choices if not c.correct)
    moved = with_truth(kind, item.task, first.pointer, other)
    assert task_turns(kind, moved)[-1].truth == other
    assert [t.truth for t in task_turns(kind, moved)[:-1]] == [t.truth for t in task_turns(kind, item.task)[:-1]]
    assert task_turns(kind, item.task)[-1].truth == first.truth  # the original is untouched
    folder = tmp_path / kind
    folder.mkdir()
    for choice in (c for t in task_turns(kind, moved) for c in t.choices):
        (folder / choice.image).write_bytes((item.folder / choice.image).read_bytes())
    if kind == "iomr":
        (folder / moved["initial_condition"]).write_bytes((item.folder / moved["initial_condition"]).read_bytes())
        for step in moved["steps"]:
            (folder / step["condition"]).write_bytes((item.folder / step["condition"]).read_bytes())
    (folder / "task.json").write_text(json.dumps(moved))
    assert task_problems(folder, None) == []
    with pytest.raises(KeyError):
        with_truth(kind, item.task, first.pointer, "Z9")


def test_the_domain_comes_from_task_metadata_then_from_an_itmr_question():
    assert task_domain({"metadata": json.dumps({"domain": "daily"})}) == "daily"
    assert task_domain({"metadata": "", "questions": [{"metadata": json.dumps({"domain": "eng"})}]}) == "eng"
    assert task_domain({"metadata": "not json"}) is None
