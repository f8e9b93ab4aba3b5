"""The VisChainBench evaluation protocol: a task played as a conversation, turn by turn.

A task becomes a `Script`: an intro, solved examples (ICIR only) and the questions, each question a
user turn of text and images followed by labelled candidate images. `converse` plays the script
against one model turn by turn and yields an `Answer` per question as it comes:

    script = task_script(item, icir_text="none")     # pure: task.json -> turns
    async for answer in converse(model, script, labels_dir=out / "labels"):
        ...                                          # answer.label, answer.correct, answer.format_error

Labels are numbers from 1 (ITMR, ICIR) or the task's option letters (IOMR), drawn in the top-left
corner of a copy of each candidate (agents/protocol/labels.py). The model must answer
`ANSWER: <label>`; the last such label counts; any other reply is wrong and counted as a format error.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from agents.backends.chat import ChatModel, SamplingParams
from agents.protocol.labels import labelled_image
from agents.protocol.prompts import PROMPTS
from schemas.task import TaskItem, task_turns

HISTORY_MODES = ("model", "gold", "stop_on_error")
ICIR_TEXT_MODES = ("none", "full")
"""What an ICIR conversation says in words. none (the default): no task statement and no step
descriptions, the paper's "constructed without any text instruction, but using pure images as a
condition brief"; full: task.json's `task` in the intro and each step's `description`, as the public
files carry them. Only the fixed protocol lines (how labels look, the answer format) stay in both."""

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


def task_script(item: TaskItem, icir_text: str = "none") -> Script:
    """The conversation of one task: the task model's turns with the protocol's prompt texts.
    `icir_text` (ICIR_TEXT_MODES) says whether an ICIR task's words are shown."""
    if icir_text not in ICIR_TEXT_MODES:
        raise ValueError(f"icir_text: {icir_text!r} is not one of {', '.join(ICIR_TEXT_MODES)}")
    task, folder = item.task, item.folder
    icir_words = icir_text == "full"
    intro = {"itmr": lambda: PROMPTS["itmr_intro"].format(scene=task["initial_scene_description"]),
             "icir": lambda: (PROMPTS["icir_intro"].format(task=task["task"]) if icir_words
                              else PROMPTS["icir_intro_image_only"]),
             "iomr": lambda: PROMPTS["iomr_intro"]}[item.kind]()
    examples, questions = [], []
    for turn in task_turns(item.kind, task):
        number = 0 if turn.example else len(questions) + 1
        if item.kind == "itmr":
            parts = [("text", PROMPTS["itmr_question"].format(index=number, task_description=turn.context,
                                                              question=turn.text))]
        elif item.kind == "icir":
            # Image only: a turn is its labelled candidates and the answer line, nothing before them.
            parts = [("text", PROMPTS["icir_step"].format(step=turn.step, description=turn.text))] if icir_words else []
        else:
            parts = [("text", PROMPTS["iomr_initial"]), ("image", str(folder / task["initial_condition"]))] \
                if number == 1 else []
            parts += [("text", PROMPTS["iomr_step"].format(step=turn.step)), ("image", str(folder / turn.condition))]
        question = Question(number, tuple(parts), tuple((c.label, folder / c.image) for c in turn.choices), turn.truth)
        (examples if turn.example else questions).append(question)
    return Script(intro, "number" if item.kind != "iomr" else "letter", tuple(examples), tuple(questions))


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
                   params: SamplingParams = SamplingParams(max_tokens=256)) -> AsyncIterator[Answer]:
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
