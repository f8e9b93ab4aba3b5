"""Stories from a generated run folder: the correct images of a task, in order, as scenes.

A run keeps each task in `tasks/<kind>/<task id>/` with `task.json` (VisChainBench format) and the
planner's `plan.json` beside it. `plan.steps[i].scene_description` says what step i's correct image
shows, so:

- ITMR: question i's correct choice is a one-frame scene described by plan step i.
- IOMR: the initial condition (described by the plan's `initial_scene_description`), then each
  step's correct option (described by plan step i).
- ICIR tasks are in-context puzzles, not sequences; they give no story.

    for story in iter_run_stories("runs/eng"):
        story.story_id   # "eng/itmr/0001"
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from imagechain.data.story import Scene, Story
from schemas.errors import DataError, read_json
from schemas.schema_check import SchemaViolation, require

STORY_KINDS = ("itmr", "iomr")


def is_run_folder(path: str | Path) -> bool:
    return (Path(path) / "tasks").is_dir()


def iter_run_stories(run_dir: str | Path, kinds: tuple[str, ...] = STORY_KINDS,
                     require_plan: bool = True) -> Iterator[Story]:
    """One story per task of `kinds` (ITMR, IOMR) in the run, in kind then task-id order.

    A task without plan.json has no scene descriptions: an error, or skipped when not `require_plan`
    (folders imported from elsewhere carry no plan)."""
    run_dir = Path(run_dir)
    if not is_run_folder(run_dir):
        raise DataError(f"{run_dir}: not a run folder (no tasks/ folder)")
    run_name = run_dir.resolve().name
    builders = {"itmr": _itmr_scenes, "iomr": _iomr_scenes}
    for kind in kinds:
        for task_dir in sorted(p.parent for p in (run_dir / "tasks" / kind).glob("*/task.json")):
            if not require_plan and not (task_dir / "plan.json").is_file():
                continue
            task = _read_json(task_dir / "task.json", kind)
            plan = _read_json(task_dir / "plan.json", "plan")
            if plan["task_kind"] != kind:
                raise DataError(f"{task_dir / 'plan.json'}: task_kind is {plan['task_kind']!r}, "
                                f"but the task is in tasks/{kind}")
            scenes = builders[kind](task_dir, task, plan)
            metadata = {"task_kind": kind, "task_dir": str(task_dir), "title": plan["title"],
                        "topic": plan["topic"], "initial_scene_description": plan["initial_scene_description"]}
            yield Story(story_id=f"{run_name}/{kind}/{task_dir.name}", source=f"run:{run_name}",
                        scenes=scenes, split=None, metadata=metadata)


def _itmr_scenes(task_dir: Path, task: dict, plan: dict) -> list[Scene]:
    steps = _matching_steps(task_dir, plan, len(task["questions"]), "questions")
    scenes = []
    for index, (question, step) in enumerate(zip(task["questions"], steps)):
        correct = [choice["image"] for choice in question["choices"] if choice["correct"]]
        if len(correct) != 1:
            raise DataError(f"{task_dir / 'task.json'}#/questions/{index}: {len(correct)} correct choices, "
                            "expected exactly one")
        scenes.append(Scene(frames=[_image(task_dir, correct[0])], description=step["scene_description"]))
    return scenes


def _iomr_scenes(task_dir: Path, task: dict, plan: dict) -> list[Scene]:
    steps = _matching_steps(task_dir, plan, len(task["steps"]), "steps")
    scenes = [Scene(frames=[_image(task_dir, task["initial_condition"])],
                    description=plan["initial_scene_description"])]
    for index, (step, planned) in enumerate(zip(task["steps"], steps)):
        correct = [o["image"] for o in step["options"] if o["option"] == step["correct_option"]]
        if len(correct) != 1:
            raise DataError(f"{task_dir / 'task.json'}#/steps/{index}: correct_option {step['correct_option']!r} "
                            f"matches {len(correct)} options")
        scenes.append(Scene(frames=[_image(task_dir, correct[0])], description=planned["scene_description"]))
    return scenes


def _matching_steps(task_dir: Path, plan: dict, count: int, what: str) -> list[dict]:
    if len(plan["steps"]) != count:
        raise DataError(f"{task_dir / 'plan.json'}: {len(plan['steps'])} steps, but task.json has {count} {what}")
    return plan["steps"]


def _image(task_dir: Path, name: str) -> str:
    path = task_dir / name
    if not path.is_file():
        raise DataError(f"{task_dir / 'task.json'}: image file {name!r} not found in the task folder")
    return str(path)


def _read_json(path: Path, schema: str) -> dict:
    value = read_json(path)
    try:
        require(schema, value, file=str(path))
    except SchemaViolation as err:
        raise DataError(str(err)) from None
    return value
