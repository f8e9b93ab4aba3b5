"""The VisChainBench evaluation protocol for all three task kinds.

A task becomes a `Script`: an intro, solved examples (ICIR only) and the questions, each question a
user turn of text and images followed by labelled candidate images. `converse` plays the script
against one model turn by turn and yields an `Answer` per question as it comes:

    script = task_script(item)                       # pure: task.json -> turns
    async for answer in converse(model, script, labels_dir=out / "labels"):
        ...                                          # answer.label, answer.correct, answer.format_error

Labels are numbers from 1 (ITMR, ICIR) or the task's option letters (IOMR), drawn in the top-left
corner of a copy of each candidate; the copies are content-addressed files in `labels_dir`, so only
paths travel in messages, state and logs. The model must answer `ANSWER: <label>`; the last such
label counts; any other reply is wrong and counted as a format error.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import io
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from agents.backends.chat import ChatModel, GenerationParams, file_sha256
from agents.durable_files import write_atomically
from agents.protocol_prompts import PROMPTS
from schemas.validate import detect_kind

HISTORY_MODES = ("model", "gold", "stop_on_error")

# ---- Labels drawn on the candidates ------------------------------------------------------------

LABEL_FRACTION = 0.12
"""Label text height as a share of the image's short side: 12% of a 512 px image is 61 px."""
LABEL_MIN_PX = 12
"""Smallest label text height: a label on a thumbnail stays readable (12 px is a usual minimum UI font size)."""
LABEL_STYLE = {"font": "Pillow ImageFont.load_default(size) (Aileron Regular, ships with Pillow)",
               "corner": "top-left", "size": f"{LABEL_FRACTION:.0%} of short side, min {LABEL_MIN_PX} px",
               "colours": "white text on a black box", "version": 1}
"""Recorded with scores; part of every labelled file's address, so a style change relabels."""


def label_px(width: int, height: int) -> int:
    return max(LABEL_MIN_PX, round(LABEL_FRACTION * min(width, height)))


@functools.lru_cache(maxsize=64)
def label_font(size: int) -> ImageFont.FreeTypeFont:
    # A scalable font in Pillow >= 10.1, no system fonts; cached: each load decodes it (~20 ms).
    return ImageFont.load_default(size=size)


def draw_label(image: Image.Image, label: str) -> Image.Image:
    """A copy of `image` with `label` in white on a black box in the top-left corner."""
    out = image.convert("RGB")
    size = label_px(*out.size)
    font = label_font(size)
    draw = ImageDraw.Draw(out)
    left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
    pad = max(2, size // 4)
    draw.rectangle([0, 0, right - left + 2 * pad, bottom - top + 2 * pad], fill=(0, 0, 0))
    draw.text((pad - left, pad - top), label, font=font, fill=(255, 255, 255))
    return out


def labelled_image(source: str | Path, label: str, labels_dir: Path) -> Path:
    """The labelled copy of `source`, drawn once: its name is the hash of image bytes, label and style."""
    blob = json.dumps([file_sha256(source), label, LABEL_STYLE], sort_keys=True)
    key = hashlib.sha256(blob.encode()).hexdigest()[:32]
    with Image.open(source) as image:
        is_jpeg = image.format == "JPEG"
        target = labels_dir / f"{key}.{'jpg' if is_jpeg else 'png'}"
        if target.is_file():
            return target
        labelled = draw_label(image, label)
    # JPEG sources stay JPEG (a photo as PNG is ~5x larger); drawings stay lossless.
    buffer = io.BytesIO()
    labelled.save(buffer, format="JPEG" if is_jpeg else "PNG", quality=95)
    return write_atomically(target, buffer.getvalue(), fsync=False)  # concurrent tasks may label the same image


# ---- Tasks on disk -----------------------------------------------------------------------------

@dataclass(frozen=True)
class TaskItem:
    """One task folder, read."""

    kind: str
    """itmr, icir or iomr."""
    task_id: str
    """Folder path below `tasks/<kind>/` in a run folder, or below the root in a foreign folder."""
    folder: Path
    """The task folder; image names in `task` are relative to it."""
    task: dict
    """task.json as read."""
    domain: str | None
    """The `domain` key of the task's metadata JSON string, when present."""


def load_tasks(root: Path) -> list[TaskItem]:
    """Every task under `root` (a run folder, a task folder, or any VisChainBench-layout folder)."""
    if (root / "task.json").is_file():
        files = [root / "task.json"]
    else:
        files = sorted(p for p in root.rglob("task.json") if not any(s.startswith(".") for s in p.parts))
    items = []
    for file in files:
        task = json.loads(file.read_text())
        kind = detect_kind(task)
        parts = file.parent.relative_to(root).parts if file.parent != root else (file.parent.name,)
        if len(parts) > 2 and parts[0] == "tasks" and parts[1] == kind:
            parts = parts[2:]
        items.append(TaskItem(kind, "/".join(parts), file.parent, task, task_domain(task)))
    return items


def task_domain(task: dict) -> str | None:
    """`domain` from the task's metadata JSON string (ITMR: else from its first question's)."""
    candidates = [task.get("metadata")] + [q.get("metadata") for q in task.get("questions", [])[:1]]
    for text in candidates:
        try:
            value = json.loads(text) if isinstance(text, str) and text.strip() else None
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict) and isinstance(value.get("domain"), str):
            return value["domain"]
    return None


# ---- Scripts: a task as turns -------------------------------------------------------------------

@dataclass(frozen=True)
class Question:
    """One user turn that asks the model to choose."""

    number: int
    """1-based among the asked questions (ICIR examples are numbered 0)."""
    parts: tuple[tuple[str, str], ...]
    """("text", words) or ("image", file) shown before the candidates, in order."""
    choices: tuple[tuple[str, Path], ...]
    """(label, source image) of each candidate, in the order shown."""
    truth: str
    """The label of the correct candidate."""


@dataclass(frozen=True)
class Script:
    """A task as the conversation the protocol plays."""

    intro: str
    """Text that opens the first user turn."""
    label_kind: str
    """"number" or "letter": what the answer-format line asks for."""
    examples: tuple[Question, ...]
    """Solved turns shown with their gold answers before the questions (ICIR)."""
    questions: tuple[Question, ...]
    """The turns that are scored, in order."""


def task_script(item: TaskItem) -> Script:
    return {"itmr": _itmr_script, "icir": _icir_script, "iomr": _iomr_script}[item.kind](item.task, item.folder)


def _itmr_script(task: dict, folder: Path) -> Script:
    questions = []
    for number, q in enumerate(task["questions"], start=1):
        text = PROMPTS["itmr_question"].format(index=number, task_description=q["task_description"],
                                               question=q["question"])
        choices = tuple((str(i), folder / c["image"]) for i, c in enumerate(q["choices"], start=1))
        truth = next(str(i) for i, c in enumerate(q["choices"], start=1) if c["correct"])
        questions.append(Question(number, (("text", text),), choices, truth))
    intro = PROMPTS["itmr_intro"].format(scene=task["initial_scene_description"])
    return Script(intro, "number", (), tuple(questions))


def _icir_script(task: dict, folder: Path) -> Script:
    examples, questions = [], []
    for step in sorted(task["steps"], key=lambda s: s["step"]):
        # Labels are positions from 1, whatever the image_ids are; the truth maps through image_id.
        ids = [image["image_id"] for image in step["images"]]
        choices = tuple((str(i), folder / image["image"]) for i, image in enumerate(step["images"], start=1))
        truth = str(ids.index(step["answer_label"]) + 1)
        text = PROMPTS["icir_step"].format(step=step["step"], description=step["description"])
        is_example = step["step"] < task["question_start_label"]
        number = 0 if is_example else len(questions) + 1
        (examples if is_example else questions).append(Question(number, (("text", text),), choices, truth))
    return Script(PROMPTS["icir_intro"].format(task=task["task"]), "number", tuple(examples), tuple(questions))


def _iomr_script(task: dict, folder: Path) -> Script:
    questions = []
    for number, step in enumerate(sorted(task["steps"], key=lambda s: s["step"]), start=1):
        parts = [("text", PROMPTS["iomr_initial"]), ("image", str(folder / task["initial_condition"]))] if number == 1 else []
        parts += [("text", PROMPTS["iomr_step"].format(step=step["step"])), ("image", str(folder / step["condition"]))]
        choices = tuple((o["option"], folder / o["image"]) for o in step["options"])
        questions.append(Question(number, tuple(parts), choices, step["correct_option"]))
    return Script(PROMPTS["iomr_intro"], "letter", (), tuple(questions))


# ---- Answers -----------------------------------------------------------------------------------

def parse_answer(reply: str, labels: list[str] | tuple[str, ...]) -> str | None:
    """The last `ANSWER: <label>` in the reply if it names one of `labels`; None is a format error.

    Tolerated: any case of "answer", brackets or quotes around the label (the paper's own prompt
    says `ANSWER: [choice]`), text before and after. A number where letters are asked (or the
    reverse), or a label that is not shown, is a format error.
    """
    token = r"\d+" if all(label.isdigit() for label in labels) else r"[A-Za-z]"
    pattern = re.compile(rf"ANSWER\s*:\s*[\[(\"'*]*\s*({token})(?![A-Za-z0-9])", re.IGNORECASE)
    found = pattern.findall(reply or "")
    if not found:
        return None
    label = found[-1].upper().lstrip("0") or "0"
    return label if label in labels else None


@dataclass(frozen=True)
class Answer:
    """What one model did with one question."""

    question: int
    """Question.number."""
    reply: str | None
    """The raw reply; None when the question was skipped (history=stop_on_error after an error)."""
    label: str | None
    """The parsed label; None on a format error or a skip."""
    truth: str
    correct: bool
    format_error: bool
    skipped: bool = False


def user_turn(question: Question, labelled: dict[tuple[str, str], Path], lead: str | None,
              label_kind: str) -> dict:
    """The user message for one question: lead text, the question's parts, labelled choices, format."""
    content = [{"type": "text", "text": lead}] if lead else []
    for kind, value in question.parts:
        content.append({"type": "text", "text": value} if kind == "text" else {"type": "image", "path": value})
    content += [{"type": "image", "path": str(labelled[(str(src), label)])} for label, src in question.choices]
    content.append({"type": "text", "text": PROMPTS["answer_format"].format(label_kind=label_kind)})
    return {"role": "user", "content": content}


def label_script(script: Script, labels_dir: Path) -> dict[tuple[str, str], Path]:
    """(source, label) -> labelled copy, for every candidate in the script."""
    turns = script.examples + script.questions
    return {(str(src), label): labelled_image(src, label, labels_dir) for q in turns for label, src in q.choices}


async def converse(model: ChatModel, script: Script, *, labels_dir: Path, history: str = "model",
                   params: GenerationParams = GenerationParams(max_tokens=256)) -> AsyncIterator[Answer]:
    """Play the script turn by turn; yield each question's Answer as soon as the model replies.

    history: "model" puts the model's own replies in later turns (as a real user's chat would),
    "gold" puts `ANSWER: <truth>` there instead, "stop_on_error" plays "model" and skips every
    question after the first wrong one (a skip counts as wrong, not as a format error).
    """
    if history not in HISTORY_MODES:
        raise ValueError(f"history: {history!r} is not one of {', '.join(HISTORY_MODES)}")
    labelled = await asyncio.to_thread(label_script, script, labels_dir)  # PIL work off the event loop
    messages: list[dict] = []
    lead = script.intro
    for example in script.examples:
        messages.append(user_turn(example, labelled, lead, script.label_kind))
        messages.append({"role": "assistant", "content": PROMPTS["gold_answer"].format(label=example.truth)})
        lead = None
    failed = False
    for question in script.questions:
        if failed:
            yield Answer(question.number, None, None, question.truth, False, False, skipped=True)
            continue
        messages.append(user_turn(question, labelled, lead, script.label_kind))
        lead = None
        reply = (await model.chat(messages, params=params)).text
        label = parse_answer(reply, [label for label, _ in question.choices])
        answer = Answer(question.number, reply, label, question.truth, label == question.truth, label is None)
        yield answer
        shown = PROMPTS["gold_answer"].format(label=question.truth) if history == "gold" else reply
        messages.append({"role": "assistant", "content": shown})
        failed = history == "stop_on_error" and not answer.correct
