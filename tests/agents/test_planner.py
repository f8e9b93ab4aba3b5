"""The planner's request schema: the plan schema narrowed to one kind, fixed roles, bounded sizes."""

from __future__ import annotations

import jsonschema
import pytest

from agents.planner import PlanShape, fit_image_budget, image_count, plan_request_schema, planner_messages
from schemas.schema_check import load_schema


def plan(kind: str, roles_per_step: list[list[str]], title: str = "Fix a gear") -> dict:
    step = lambda roles: {"question": "" if kind == "iomr" else "Which part next?", "scene_description": "a gear",
                          "images": [{"role": r, "description": f"a {r} image"} for r in roles]}
    return {"task_kind": kind, "title": title, "initial_scene_description": "An open gearbox on a bench.",
            "steps": [step(roles) for roles in roles_per_step]}


def valid(schema: dict, value: dict) -> bool:
    return jsonschema.Draft202012Validator(schema).is_valid(value)


@pytest.mark.parametrize("kind", ["itmr", "icir"])
def test_itmr_and_icir_steps_start_with_the_correct_image_then_distractors(kind):
    schema = plan_request_schema(kind, may_reject=False)
    assert valid(schema, plan(kind, [["correct", "distractor", "distractor"]] * 2))
    assert not valid(schema, plan(kind, [["distractor", "correct", "distractor"]] * 2))  # role order is fixed
    assert not valid(schema, plan(kind, [["correct", "distractor"]] * 2))  # too few distractors
    assert not valid(schema, plan("iomr" if kind == "itmr" else "itmr", [["correct", "distractor", "distractor"]] * 2))


def test_iomr_steps_open_with_their_condition_and_may_have_no_words():
    schema = plan_request_schema("iomr", may_reject=False)
    assert valid(schema, plan("iomr", [["condition", "correct", "distractor", "distractor"]] * 3))
    assert not valid(schema, plan("iomr", [["correct", "condition", "distractor", "distractor"]] * 3))


def test_the_shape_bounds_steps_distractors_and_text_and_rejection_needs_permission():
    shape = PlanShape(max_steps=2, max_distractors=2, title_chars=10)
    schema = plan_request_schema("itmr", may_reject=False, shape=shape)
    assert valid(schema, plan("itmr", [["correct", "distractor", "distractor"]] * 2, title="short"))
    assert not valid(schema, plan("itmr", [["correct", "distractor", "distractor"]] * 3, title="short"))
    assert not valid(schema, plan("itmr", [["correct", "distractor", "distractor", "distractor"]] * 2, title="short"))
    assert not valid(schema, plan("itmr", [["correct", "distractor", "distractor"]] * 2, title="a much longer title"))
    assert not valid(schema, plan("itmr", [["correct", "distractor", "distractor"]] * 2, title='say "hi"'))
    rejection = {"rejected": True, "reason": "no visual form"}
    assert not valid(schema, rejection)
    assert valid(plan_request_schema("itmr", may_reject=True, shape=shape), rejection)
    assert "instead of a plan" in planner_messages("d", "t", "itmr", may_reject=True)[1]["content"]
    assert "instead of a plan" not in planner_messages("d", "t", "itmr", may_reject=False)[1]["content"]


def test_a_shape_that_contradicts_itself_is_refused_naming_the_field():
    with pytest.raises(ValueError, match="generate.plan_shape.max_step: unknown field"):
        PlanShape.from_dict({"max_step": 3})
    with pytest.raises(ValueError, match="must not exceed"):
        PlanShape.from_dict({"min_steps": 4, "max_steps": 3})


def iomr_plan(distractors_per_step: list[int]) -> dict:
    return plan("iomr", [["condition", "correct"] + ["distractor"] * d for d in distractors_per_step])


def test_the_paper_profile_admits_six_turns_and_27_images_and_the_demo_does_not():
    from graphs.profile import load_profile

    six_turns = iomr_plan([3, 3, 2, 2, 2, 2])  # 1 start + 6 x 4 + 2 = 27 images, the paper's largest
    assert image_count(six_turns) == 27
    jsonschema.Draft202012Validator(load_schema("plan")).validate({"topic": "gears", **six_turns})
    paper = load_profile("paper").generate
    assert valid(plan_request_schema("iomr", paper.planner_may_reject, paper.plan_shape), six_turns)
    assert valid(plan_request_schema("itmr", False, paper.plan_shape),
                 plan("itmr", [["correct", "distractor", "distractor", "distractor"]] * 6))  # 24 images
    assert "at most 27 images in all" in planner_messages("d", "t", "iomr", False, paper.plan_shape)[1]["content"]
    demo = load_profile("demo").generate
    assert not valid(plan_request_schema("iomr", demo.planner_may_reject, demo.plan_shape), six_turns)
    assert demo.plan_shape.largest_task() < 27  # the demo keeps its small, fast shape


def test_a_plan_over_the_image_budget_loses_distractors_from_its_fullest_latest_steps():
    shape = PlanShape(max_steps=6, max_images=27)
    over = iomr_plan([3, 3, 3, 3, 3, 3])  # 31 images
    fitted = fit_image_budget(over, shape)
    assert image_count(fitted) == 27
    assert [len(step["images"]) - 2 for step in fitted["steps"]] == [3, 3, 2, 2, 2, 2]
    assert [s["images"][:2] for s in fitted["steps"]] == [s["images"][:2] for s in over["steps"]]  # roles kept
    assert fit_image_budget(iomr_plan([2, 2]), shape) == iomr_plan([2, 2])  # under budget: untouched
    with pytest.raises(ValueError, match="generate.plan_shape.max_images: 24 is under 25"):
        PlanShape.from_dict({"max_steps": 6, "max_images": 24})
