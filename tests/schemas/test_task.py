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


# ---- Edits of one field (the review stage) --------------------------------------------------------

def test_the_text_fields_are_the_prose_of_each_kind_and_an_edit_changes_only_its_field():
    from schemas.task import task_texts, with_text

    items = {item.kind: item for item in load_tasks(EXAMPLE_RUN)}
    itmr = task_texts("itmr", items["itmr"].task)
    assert [f.pointer for f in itmr] == ["/initial_scene_description", "/questions/0/task_description",
                                         "/questions/0/question", "/questions/1/task_description",
                                         "/questions/1/question"]
    assert itmr[2].text == "Which part replaces the broken gear?" and itmr[2].name == "question 1"
    icir = task_texts("icir", items["icir"].task)
    assert icir[0].pointer == "/task" and "/steps/2/images/1/image_description" in [f.pointer for f in icir]
    assert task_texts("iomr", items["iomr"].task) == []

    edited = with_text("itmr", items["itmr"].task, "/questions/1/question", "<b>New?</b>")
    assert edited["questions"][1]["question"] == "<b>New?</b>"
    assert items["itmr"].task["questions"][1]["question"] == "What do you apply before closing the box?"
    assert {k: v for k, v in edited.items() if k != "questions"} == \
        {k: v for k, v in items["itmr"].task.items() if k != "questions"}
    assert edited["questions"][0] == items["itmr"].task["questions"][0]


@pytest.mark.parametrize("pointer", ["/metadata", "/questions/0/original_id", "/questions/0/choices/0/image",
                                     "/questions/9/question", "/nothing"])
def test_only_prose_fields_can_be_edited_as_text(pointer):
    from schemas.task import with_text

    item = next(i for i in load_tasks(EXAMPLE_RUN) if i.kind == "itmr")
    with pytest.raises(KeyError):
        with_text("itmr", item.task, pointer, "x")


def test_an_image_swap_names_another_file_at_an_image_field_only():
    from schemas.task import task_images, with_image

    item = next(i for i in load_tasks(EXAMPLE_RUN) if i.kind == "iomr")
    swapped = with_image(item.task, "/steps/1/options/2/image", "s2_C.r2.jpg")
    assert dict(task_images(swapped))["/steps/1/options/2/image"] == "s2_C.r2.jpg"
    assert dict(task_images(item.task))["/steps/1/options/2/image"] == "s2_C.png"
    assert with_image(item.task, "/initial_condition", "x.png")["initial_condition"] == "x.png"
    with pytest.raises(KeyError):
        with_image(item.task, "/steps/1/correct_option", "x.png")
