"""task.json: the one module that knows the shape of a benchmark task, for all three kinds.

The files follow the public VisChainBench dataset (one `task.json` per task folder, images beside
it, image fields are file names relative to the folder):

    itmr  initial_scene_description, questions[] {original_id, question, task_description,
          choices[] {image, correct}, metadata}, metadata
    icir  task, question_start_label, steps[] {step, description, images[] {image_id,
          image_description, image}, answer_label}, metadata
    iomr  initial_condition, steps[] {step, condition, options[] {option, image}, correct_option},
          metadata

Readers see every kind the same way through `task_turns`: a list of turns, each with its text,
its condition image (IOMR), and labelled choices, one of them correct. The labels are the ones
the evaluation protocol draws on the images: numbers from 1 in the order shown (ITMR, ICIR) or
the option letters (IOMR).

    item = read_task(folder)                     # TaskItem: kind, id, folder, task, domain
    for turn in task_turns(item.kind, item.task):
        turn.text, [c.label for c in turn.choices], turn.truth
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

TASK_KINDS = ("itmr", "icir", "iomr")


# ---- The three shapes, as the schemas (itmr/icir/iomr.schema.json) state them --------------------

class ItmrChoice(TypedDict):
    image: str
    correct: bool


class ItmrQuestion(TypedDict):
    original_id: str
    question: str
    task_description: str
    choices: list[ItmrChoice]
    metadata: str


class ItmrTask(TypedDict):
    initial_scene_description: str
    questions: list[ItmrQuestion]
    metadata: str


class IcirImage(TypedDict):
    image_id: int
    image_description: str
    image: str


class IcirStep(TypedDict):
    step: int
    description: str
    images: list[IcirImage]
    answer_label: int


class IcirTask(TypedDict):
    task: str
    question_start_label: int
    steps: list[IcirStep]
    metadata: str


class IomrOption(TypedDict):
    option: str
    image: str


class IomrStep(TypedDict):
    step: int
    condition: str
    options: list[IomrOption]
    correct_option: str


class IomrTask(TypedDict):
    initial_condition: str
    steps: list[IomrStep]
    metadata: str


Task = ItmrTask | IcirTask | IomrTask


# ---- plan.json: the planner's skeleton beside task.json (schemas/plan.schema.json) ---------------

class PlanImage(TypedDict):
    role: str
    """correct, distractor or condition."""
    description: str


class PlanStep(TypedDict):
    question: str
    scene_description: str
    """What the correct image shows, as one sentence of a story (ImageChain's scene text)."""
    images: list[PlanImage]


class Plan(TypedDict):
    task_kind: str
    topic: str
    title: str
    initial_scene_description: str
    steps: list[PlanStep]


def detect_kind(task) -> str | None:
    """The VisChainBench kind of a task.json by its shape (foreign folders carry no kind field)."""
    if isinstance(task, dict):
        if "questions" in task:
            return "itmr"
        if "question_start_label" in task:
            return "icir"
        if "initial_condition" in task:
            return "iomr"
    return None


def task_images(task: Task) -> list[tuple[str, str]]:
    """(JSON pointer, file name) of every image a task references, in reading order."""
    kind = detect_kind(task)
    if kind == "itmr":
        return [(f"/questions/{q}/choices/{c}/image", choice["image"])
                for q, question in enumerate(task["questions"]) for c, choice in enumerate(question["choices"])]
    if kind == "icir":
        return [(f"/steps/{s}/images/{i}/image", image["image"])
                for s, step in enumerate(task["steps"]) for i, image in enumerate(step["images"])]
    pairs = [("/initial_condition", task["initial_condition"])]
    for s, step in enumerate(task["steps"]):
        pairs.append((f"/steps/{s}/condition", step["condition"]))
        pairs += [(f"/steps/{s}/options/{o}/image", option["image"]) for o, option in enumerate(step["options"])]
    return pairs


# ---- Metadata: a JSON string, as the public dataset stores it ------------------------------------

def task_metadata(domain: str, topic: str, title: str) -> str:
    """The task-level `metadata` string vischain writes."""
    return json.dumps({"domain": domain, "topic": topic, "title": title}, sort_keys=True)


def task_domain(task: Task) -> str | None:
    """`domain` from the task's metadata JSON string; for ITMR, else from its first question's
    (the public ITMR files keep it there). None when no metadata names one."""
    candidates = [task.get("metadata")] + [q.get("metadata") for q in task.get("questions", [])[:1]]
    for text in candidates:
        try:
            value = json.loads(text) if isinstance(text, str) and text.strip() else None
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict) and isinstance(value.get("domain"), str) and value["domain"]:
            return value["domain"]
    return None


# ---- Turns: every kind read the same way --------------------------------------------------------

@dataclass(frozen=True)
class Choice:
    label: str
    """What the protocol draws on the image and the model answers: "1", "2", ... or "A", "B", ..."""
    image: str
    """File name in the task folder."""
    correct: bool
    pointer: str
    """JSON pointer of the image field."""


@dataclass(frozen=True)
class Turn:
    step: int
    """The step number (ITMR: the question's position from 1)."""
    example: bool
    """ICIR steps before question_start_label: shown solved, not asked."""
    text: str | None
    """The question (ITMR) or step description (ICIR); None for IOMR, which has no words."""
    context: str | None
    """ITMR: the question's task_description."""
    condition: str | None
    """IOMR: the condition image of this step."""
    choices: tuple[Choice, ...]
    pointer: str
    """JSON pointer of the question or step."""

    @property
    def truth(self) -> str:
        return next(c.label for c in self.choices if c.correct)


def task_turns(kind: str, task: Task) -> list[Turn]:
    """The task's turns in the order they are played (ICIR and IOMR steps sorted by number)."""
    if kind == "itmr":
        return [Turn(n, False, q["question"], q["task_description"], None,
                     tuple(Choice(str(i), c["image"], bool(c["correct"]), f"/questions/{n - 1}/choices/{i - 1}/image")
                           for i, c in enumerate(q["choices"], start=1)), f"/questions/{n - 1}")
                for n, q in enumerate(task["questions"], start=1)]
    order = sorted(range(len(task["steps"])), key=lambda s: task["steps"][s]["step"])
    turns = []
    for s in order:
        step = task["steps"][s]
        if kind == "icir":
            # Labels are positions from 1, whatever the image_ids are; the truth maps through image_id.
            choices = tuple(Choice(str(i), image["image"], image["image_id"] == step["answer_label"],
                                   f"/steps/{s}/images/{i - 1}/image")
                            for i, image in enumerate(step["images"], start=1))
            turns.append(Turn(step["step"], step["step"] < task["question_start_label"], step["description"],
                              None, None, choices, f"/steps/{s}"))
        else:
            choices = tuple(Choice(o["option"], o["image"], o["option"] == step["correct_option"],
                                   f"/steps/{s}/options/{i}/image") for i, o in enumerate(step["options"]))
            turns.append(Turn(step["step"], False, None, None, step["condition"], choices, f"/steps/{s}"))
    return turns


def with_truth(kind: str, task: Task, turn_pointer: str, label: str) -> Task:
    """A copy of the task whose turn at `turn_pointer` has the choice labelled `label` as its answer;
    KeyError when no such turn or label exists."""
    copy = json.loads(json.dumps(task))
    turn = next((t for t in task_turns(kind, task) if t.pointer == turn_pointer), None)
    if turn is None or label not in {c.label for c in turn.choices}:
        raise KeyError(f"{turn_pointer}: no choice labelled {label!r}")
    index = int(turn_pointer.rsplit("/", 1)[1])
    if kind == "itmr":
        for i, choice in enumerate(copy["questions"][index]["choices"], start=1):
            choice["correct"] = str(i) == label
    elif kind == "icir":
        step = copy["steps"][index]
        step["answer_label"] = step["images"][int(label) - 1]["image_id"]
    else:
        copy["steps"][index]["correct_option"] = label
    return copy


# ---- Task folders on disk -----------------------------------------------------------------------

@dataclass(frozen=True)
class TaskItem:
    """One task folder, read."""

    kind: str
    """itmr, icir or iomr."""
    task_id: str
    """Folder path below `tasks/<kind>/` in a run folder, or below the root in a foreign folder."""
    folder: Path
    """The task folder; image names in `task` are relative to it."""
    task: Task
    """task.json as read."""
    domain: str | None
    """The task's domain (task_domain), when its metadata names one."""


def read_task_json(folder: Path) -> Task:
    """task.json of a folder; OSError or ValueError (JSON) as raised."""
    return json.loads((folder / "task.json").read_text(encoding="utf-8"))


def task_json_text(task: Task) -> str:
    """The exact text vischain writes for a task.json."""
    return json.dumps(task, indent=2, ensure_ascii=False) + "\n"


def task_folders(root: Path) -> list[Path]:
    """Every folder with a task.json under `root` (itself included), skipping hidden folders."""
    if (root / "task.json").is_file():
        return [root]
    return sorted(p.parent for p in root.rglob("task.json")
                  if not any(s.startswith(".") for s in p.relative_to(root).parts))


def load_tasks(root: Path) -> list[TaskItem]:
    """Every task under `root` (a run folder, a task folder, or any VisChainBench-layout folder)."""
    items = []
    for folder in task_folders(root):
        task = read_task_json(folder)
        kind = detect_kind(task)
        parts = folder.relative_to(root).parts if folder != root else (folder.name,)
        if len(parts) > 2 and parts[0] == "tasks" and parts[1] == kind:
            parts = parts[2:]
        items.append(TaskItem(kind, "/".join(parts), folder, task, task_domain(task)))
    return items


# ---- Editing one field: the review stage's text and image edits ---------------------------------

@dataclass(frozen=True)
class TextField:
    """A piece of a task's prose that a person may edit."""

    pointer: str
    """JSON pointer of the string in task.json."""
    name: str
    """What it is, for a form label: "scene", "question 2", "step 1 image 3 description", ..."""
    text: str


def task_texts(kind: str, task: Task) -> list[TextField]:
    """Every prose field of a task, in reading order. IOMR has none; `metadata` (a JSON string) and
    ITMR `original_id` (an identifier) are not prose."""
    if kind == "itmr":
        fields = [TextField("/initial_scene_description", "scene", task["initial_scene_description"])]
        for q, question in enumerate(task["questions"]):
            fields.append(TextField(f"/questions/{q}/task_description", f"question {q + 1} context",
                                    question["task_description"]))
            fields.append(TextField(f"/questions/{q}/question", f"question {q + 1}", question["question"]))
        return fields
    if kind == "icir":
        fields = [TextField("/task", "task", task["task"])]
        for s, step in enumerate(task["steps"]):
            fields.append(TextField(f"/steps/{s}/description", f"step {step['step']}", step["description"]))
            fields += [TextField(f"/steps/{s}/images/{i}/image_description",
                                 f"step {step['step']} image {i + 1} description", image["image_description"])
                       for i, image in enumerate(step["images"])]
        return fields
    return []


def with_text(kind: str, task: Task, pointer: str, text: str) -> Task:
    """A copy of the task with the prose field at `pointer` set to `text`; KeyError when `pointer`
    is not one of task_texts (an image, an id or a number cannot be changed this way)."""
    if pointer not in {field.pointer for field in task_texts(kind, task)}:
        raise KeyError(f"{pointer}: not a text field of this {kind} task")
    return _with_value(task, pointer, text)


def with_image(task: Task, pointer: str, name: str) -> Task:
    """A copy of the task whose image field at `pointer` names the file `name`; KeyError when
    `pointer` is not one of task_images."""
    if pointer not in {p for p, _ in task_images(task)}:
        raise KeyError(f"{pointer}: not an image field of this task")
    return _with_value(task, pointer, name)


def _with_value(task: Task, pointer: str, value: str) -> Task:
    copy = json.loads(json.dumps(task))
    *parents, last = pointer.strip("/").split("/")
    node = copy
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[last] = value
    return copy
