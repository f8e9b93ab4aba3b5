"""From a plan to image slots, and from filled slots to a benchmark task: pure functions.

A slot is one image the task needs. Its key is also the image's file name stem in the task folder,
in the naming of the public VisChainBench folders:

    itmr   q{step}_{a,b,c...}                      (a is the correct image: plan order)
    icir   s{step}_{1,2,3...}
    iomr   start, c{step}, s{step}_{A,B,C...}      (start: the initial condition image)

Choices are shuffled per task with a seed derived from the task's seed, so the correct answer is
not always first, and a re-run writes the same task.
"""

from __future__ import annotations

import random
import string
from pathlib import Path

from graphs.generate.slots import Slot, SlotImage, new_slot
from schemas.task import Plan, Task, task_metadata


def plan_slots(plan: Plan) -> list[Slot]:
    """One slot per image the task needs: key, step (0 = the iomr start), role, description."""
    kind = plan["task_kind"]
    slots = []
    if kind == "iomr":
        slots.append(new_slot("start", 0, "condition", plan["initial_scene_description"]))
    for number, step in enumerate(plan["steps"], start=1):
        options = iter(string.ascii_uppercase if kind == "iomr" else
                       (string.ascii_lowercase if kind == "itmr" else [str(i) for i in range(1, 27)]))
        for image in step["images"]:
            if kind == "iomr" and image["role"] == "condition":
                key = f"c{number}"
            else:
                key = f"{'q' if kind == 'itmr' else 's'}{number}_{next(options)}"
            slots.append(new_slot(key, number, image["role"], image["description"]))
    return slots


def task_json(plan: Plan, slots: list[Slot], *, domain: str, seed: int) -> tuple[Task, dict[str, SlotImage]]:
    """The task.json of the plan's kind, and its images: file name in the task folder -> the slot's image."""
    images = {slot["key"]: slot["image"] for slot in slots}
    names = {key: f"{key}{Path(image['file']).suffix}" for key, image in images.items()}
    rng = random.Random(seed)
    metadata = task_metadata(domain, plan["topic"], plan["title"])
    by_step: dict[int, list[Slot]] = {}
    for slot in slots:
        by_step.setdefault(slot["step"], []).append(slot)
    build = {"itmr": _itmr, "icir": _icir, "iomr": _iomr}[plan["task_kind"]]
    task = build(plan, by_step, names, rng, metadata)
    return task, {names[key]: images[key] for key in images}


def _shuffled(items: list, rng: random.Random) -> list:
    items = list(items)
    rng.shuffle(items)
    return items


def _itmr(plan, by_step, names, rng, metadata) -> dict:
    questions = []
    for number, step in enumerate(plan["steps"], start=1):
        choices = [{"image": names[s["key"]], "correct": s["role"] == "correct"} for s in by_step[number]]
        questions.append({"original_id": str(number), "question": step["question"],
                          "task_description": plan["title"], "choices": _shuffled(choices, rng),
                          "metadata": ""})
    return {"initial_scene_description": plan["initial_scene_description"], "questions": questions,
            "metadata": metadata}


def _icir(plan, by_step, names, rng, metadata) -> dict:
    steps = []
    for number, step in enumerate(plan["steps"], start=1):
        order = _shuffled(by_step[number], rng)
        images = [{"image_id": i, "image_description": s["description"], "image": names[s["key"]]}
                  for i, s in enumerate(order, start=1)]
        answer = next(i for i, s in enumerate(order, start=1) if s["role"] == "correct")
        steps.append({"step": number, "description": step["question"], "images": images, "answer_label": answer})
    # Every step before the last is a solved example; the last is the question (VisChainBench's layout).
    return {"task": plan["initial_scene_description"], "question_start_label": len(steps), "steps": steps,
            "metadata": metadata}


def _iomr(plan, by_step, names, rng, metadata) -> dict:
    steps = []
    for number in range(1, len(plan["steps"]) + 1):
        condition = next(s for s in by_step[number] if s["role"] == "condition")
        options = _shuffled([s for s in by_step[number] if s["role"] != "condition"], rng)
        letters = string.ascii_uppercase
        steps.append({"step": number, "condition": names[condition["key"]],
                      "options": [{"option": letters[i], "image": names[s["key"]]} for i, s in enumerate(options)],
                      "correct_option": next(letters[i] for i, s in enumerate(options) if s["role"] == "correct")})
    return {"initial_condition": names["start"], "steps": steps, "metadata": metadata}
