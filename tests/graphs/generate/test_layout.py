"""From a plan to image slots and from filled slots to task.json, per kind: pure functions."""

from __future__ import annotations

import pytest

from graphs.generate.layout import plan_slots, task_json
from schemas.schema_check import require
from schemas.task import task_domain, task_images, task_turns


def make_plan(kind: str, steps: int = 2) -> dict:
    roles = ["condition", "correct", "distractor", "distractor"] if kind == "iomr" else \
        ["correct", "distractor", "distractor"]
    return {"task_kind": kind, "topic": "gear repair", "title": "Fix a gear", "initial_scene_description": "A gearbox.",
            "steps": [{"question": "" if kind == "iomr" else f"Question {n}?", "scene_description": f"scene {n}",
                       "images": [{"role": r, "description": f"{r} {n}.{i}"} for i, r in enumerate(roles)]}
                      for n in range(1, steps + 1)]}


def filled(slots: list[dict]) -> list[dict]:
    """Every slot holding a distinct pool image, as after the graph's validate or paint node."""
    out = []
    for number, slot in enumerate(slots):
        sha = f"{number:064x}"
        out.append({**slot, "status": "accepted", "image": {"file": f"images/{sha}.png", "sha256": sha,
                                                            "phash": "0" * 16, "provenance": {}}})
    return out


@pytest.mark.parametrize("kind, keys", [
    ("itmr", ["q1_a", "q1_b", "q1_c", "q2_a", "q2_b", "q2_c"]),
    ("icir", ["s1_1", "s1_2", "s1_3", "s2_1", "s2_2", "s2_3"]),
    ("iomr", ["start", "c1", "s1_A", "s1_B", "s1_C", "c2", "s2_A", "s2_B", "s2_C"]),
])
def test_slots_are_named_in_the_public_folder_layout(kind, keys):
    slots = plan_slots(make_plan(kind))
    assert [s["key"] for s in slots] == keys
    assert all(s["status"] == "open" and s["image"] is None for s in slots)
    assert slots[0]["step"] == (0 if kind == "iomr" else 1)


@pytest.mark.parametrize("kind", ["itmr", "icir", "iomr"])
def test_the_task_is_schema_valid_and_its_truth_is_the_correct_slot_whatever_the_shuffle(kind):
    plan = make_plan(kind, steps=3)
    slots = filled(plan_slots(plan))
    task, images = task_json(plan, slots, domain="engineering", seed=7)
    require(kind, task, f"{kind} task.json")
    assert sorted(name for _, name in task_images(task)) == sorted(images)
    by_name = {f"{s['key']}.png": s for s in slots}
    for turn in task_turns(kind, task):
        correct = [c.image for c in turn.choices if c.correct]
        assert len(correct) == 1 and by_name[correct[0]]["role"] == "correct"
    assert task_domain(task) == "engineering"
    assert task_json(plan, slots, domain="engineering", seed=7)[0] == task  # a re-run writes the same task
    truths = {tuple(t.truth for t in task_turns(kind, task_json(plan, slots, domain="x", seed=s)[0]))
              for s in range(8)}
    assert len(truths) > 1  # the correct answer is not always in the same place


def test_icir_asks_only_its_last_step_after_solved_examples():
    plan = make_plan("icir", steps=3)
    task, _ = task_json(plan, filled(plan_slots(plan)), domain="d", seed=1)
    assert task["question_start_label"] == 3
    assert [t.example for t in task_turns("icir", task)] == [True, True, False]
