"""A run in the formats trainers and evaluators read: `sharegpt` and `vlmevalkit-mt`.

Both are built from one conversation per task (`task_conversation`). A user turn interleaves text
and images; the assistant turn after it is the turn's label in the benchmark's answer form,
"ANSWER: <label>" (a 1-based number for ITMR and ICIR, a letter for IOMR).

- ITMR: turn 1 is the initial scene and question 1 with its numbered choice images; each later
  turn is the next question.
- ICIR: turn 1 is the task, the solved examples (steps before question_start_label, with their
  answers) and the first question step; each later turn is the next question step. A label is
  the image's `image_id`, as `answer_label` is.
- IOMR: turn 1 is an instruction, the initial state and step 1 (current state, lettered options);
  each later turn is the next step.

sharegpt: a JSON list of {"messages": [{"role", "content"}...], "images": [absolute paths]} with one
`<image>` per image in the contents, as trl and LLaMA-Factory read it. vlmevalkit-mt: the TSV that
VLMEvalKit's multi-turn dataset class (ImageMTDataset, the MMDU format) reads: `question` and
`answer` are lists of turns, each question split on `<ImageHere>` and given the images in order;
`image` holds their base64 bytes and `image_path` the names VLMEvalKit saves them under (its
`dump_image` needs both for multi-image rows).
"""

from __future__ import annotations

import base64
import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

from schemas.errors import UsageError
from schemas.run_store import RunStore
from schemas.task import detect_kind, read_task_json, task_domain

FORMATS = {"sharegpt": ".json", "vlmevalkit-mt": ".tsv"}
SHAREGPT_IMAGE = "<image>"
VLMEVALKIT_IMAGE = "<ImageHere>"
IOMR_INSTRUCTION = ("Each step shows the current state of a process and candidate next states labelled with letters. "
                    "Pick the option that shows what happens next.\n\n")


@dataclass
class Turn:
    parts: list[str | Path]
    """Text and image files, in reading order."""
    answer: str

    @property
    def images(self) -> list[Path]:
        return [part for part in self.parts if isinstance(part, Path)]

    def text(self, image_token: str) -> str:
        """The user message with `image_token` where each image goes."""
        return "".join(image_token if isinstance(part, Path) else part for part in self.parts)


@dataclass
class Conversation:
    kind: str
    task_id: str
    domain: str
    turns: list[Turn]

    @property
    def images(self) -> list[Path]:
        return [image for turn in self.turns for image in turn.images]


# ---- Task -> conversation ------------------------------------------------------------------------

def task_conversation(kind: str, task_id: str, folder: Path, task: dict) -> Conversation:
    turns = {"itmr": _itmr_turns, "icir": _icir_turns, "iomr": _iomr_turns}[kind](task, folder)
    return Conversation(kind, task_id, task_domain(task) or "unknown", turns)


def _answer(label) -> str:
    return f"ANSWER: {label}"


def _ask_for(what: str) -> str:
    return f"Answer with 'ANSWER: ' followed by the {what}."


def _labelled(pairs: list[tuple[str, Path]]) -> list[str | Path]:
    """"1: <img>\\n2: <img>\\n": each image after the label a model must answer with."""
    parts: list[str | Path] = []
    for label, image in pairs:
        parts += [f"{label}: ", image, "\n"]
    return parts


def _itmr_turns(task: dict, folder: Path) -> list[Turn]:
    turns = []
    for q, question in enumerate(task["questions"]):
        parts: list[str | Path] = [f"{task['initial_scene_description']}\n\n"] if q == 0 else []
        parts.append(f"Question {q + 1}: {question['question']}\n")
        if question["task_description"]:
            parts.append(f"{question['task_description']}\n")
        choices = question["choices"]
        parts += _labelled([(str(i + 1), folder / choice["image"]) for i, choice in enumerate(choices)])
        parts.append(_ask_for("number of the right image"))
        correct = next(i + 1 for i, choice in enumerate(choices) if choice["correct"])
        turns.append(Turn(parts, _answer(correct)))
    return turns


def _icir_step(step: dict, folder: Path, heading: str) -> list[str | Path]:
    images = [(str(image["image_id"]), folder / image["image"]) for image in step["images"]]
    return [f"{heading}: {step['description']}\n", *_labelled(images)]


def _icir_turns(task: dict, folder: Path) -> list[Turn]:
    start = task["question_start_label"]
    intro: list[str | Path] = [f"{task['task']}\n\n"]
    for step in (s for s in task["steps"] if s["step"] < start):
        intro += [*_icir_step(step, folder, f"Example {step['step']}"), f"{_answer(step['answer_label'])}\n\n"]
    turns = []
    for step in (s for s in task["steps"] if s["step"] >= start):
        parts = intro if not turns else []
        parts = [*parts, *_icir_step(step, folder, f"Step {step['step']}"), _ask_for("number of the right image")]
        turns.append(Turn(parts, _answer(step["answer_label"])))
    return turns


def _iomr_turns(task: dict, folder: Path) -> list[Turn]:
    turns = []
    for step in task["steps"]:
        parts: list[str | Path] = []
        if not turns:
            parts += [IOMR_INSTRUCTION, "Initial state: ", folder / task["initial_condition"], "\n\n"]
        parts += [f"Step {step['step']}. Current state: ", folder / step["condition"], "\nOptions:\n"]
        parts += _labelled([(option["option"], folder / option["image"]) for option in step["options"]])
        parts.append(_ask_for("letter of the right option"))
        turns.append(Turn(parts, _answer(step["correct_option"])))
    return turns


def run_conversations(store: RunStore) -> list[Conversation]:
    conversations = []
    for ref in store.tasks():
        task = read_task_json(ref.folder)
        if detect_kind(task) != ref.kind:
            raise UsageError(f"{ref.folder / 'task.json'}: a {detect_kind(task)} task in tasks/{ref.kind}")
        conversations.append(task_conversation(ref.kind, ref.task_id, ref.folder, task))
    return conversations


def _check_placeholders(conversation: Conversation, texts: list[str], token: str) -> None:
    """One placeholder per image, or a trainer would pair images with the wrong text (or crash)."""
    found, images = sum(text.count(token) for text in texts), len(conversation.images)
    if found != images:
        raise UsageError(f"task {conversation.kind}/{conversation.task_id}: {found} {token} placeholder(s) for "
                         f"{images} image(s); does the task text contain {token!r} itself?")


# ---- Conversation -> formats ---------------------------------------------------------------------

def sharegpt_record(conversation: Conversation) -> dict:
    messages = []
    for turn in conversation.turns:
        messages.append({"role": "user", "content": turn.text(SHAREGPT_IMAGE)})
        messages.append({"role": "assistant", "content": turn.answer})
    _check_placeholders(conversation, [message["content"] for message in messages], SHAREGPT_IMAGE)
    # Absolute paths: trl opens them from the working directory, LLaMA-Factory from its media_dir.
    return {"messages": messages, "images": [str(image.resolve()) for image in conversation.images]}


def vlmevalkit_row(index: int, conversation: Conversation) -> dict:
    questions = [turn.text(VLMEVALKIT_IMAGE) for turn in conversation.turns]
    answers = [turn.answer for turn in conversation.turns]
    _check_placeholders(conversation, questions + answers, VLMEVALKIT_IMAGE)
    images = conversation.images
    # Unique across the file: VLMEvalKit saves every row's images into one folder per dataset.
    prefix = f"{conversation.kind}_{conversation.task_id}"
    names = [f"{prefix}_{i:02d}{image.suffix.lower()}" for i, image in enumerate(images)]
    return {
        "index": index,
        # VLMEvalKit reads these list cells with Python's literal syntax; a JSON list of strings is one.
        "question": json.dumps(questions, ensure_ascii=False), "answer": json.dumps(answers, ensure_ascii=False),
        "image": json.dumps([base64.b64encode(image.read_bytes()).decode("ascii") for image in images]),
        "image_path": json.dumps(names), "kind": conversation.kind, "task_id": conversation.task_id,
        "domain": conversation.domain,
    }


def output_file(out: str | Path, run_name: str, fmt: str) -> Path:
    """`out` itself when it names a file (has a suffix); else the folder for `<run>_<format><ext>`.

    Takes the string as typed: Path("exports/") forgets the slash that says "a folder".
    """
    path = Path(out)
    if path.is_dir() or str(out).endswith(("/", os.sep)) or not path.suffix:
        return path / f"{run_name}_{fmt.replace('-', '_')}{FORMATS[fmt]}"
    return path


def export_run(store: RunStore, fmt: str, out: str | Path) -> tuple[Path, int]:
    """Write the run in `fmt` to `out` (a file, or a folder to put one in); returns (file, tasks)."""
    if fmt not in FORMATS:
        raise UsageError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    conversations = run_conversations(store)
    target = output_file(out, store.root.resolve().name, fmt)
    target.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "sharegpt":
        records = [sharegpt_record(conversation) for conversation in conversations]
        target.write_text(json.dumps(records, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    else:
        rows = [vlmevalkit_row(index, conversation) for index, conversation in enumerate(conversations)]
        with open(target, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["index"], delimiter="\t",
                                    lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
    return target, len(conversations)
