"""One conversation per task, exactly as `vischain eval` plays it, with its images copied into the export.

Every export format is written from these conversations, so every format shows a model what the
evaluation protocol shows it (agents/protocol/turns.py and prompts.py):

- the protocol's texts (intro, question lines, the answer-format line), in the order `user_turn` puts them;
- candidate images as the protocol's labelled copies (the label drawn in the top-left corner), and
  IOMR's condition images as they are;
- labels as the protocol draws them: positions from 1 for ITMR and ICIR (never ICIR's `image_id`),
  the option letters for IOMR; every assistant turn is the gold `ANSWER: <label>`;
- ICIR's solved examples as a user turn followed by its gold answer, before the first question.

    conversations = export_conversations(store, out)          # images land under out/images/
    conversations[0].turns[0].parts                             # (Text("..."), Image("images/..."), ...)
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from agents.protocol.labels import labelled_image
from agents.protocol.prompts import PROMPTS
from agents.protocol.turns import task_script, user_turn
from schemas.errors import UsageError
from schemas.run_store import RunStore
from schemas.task import TaskItem, load_tasks

IMAGES_DIR = "images"
"""Where an export keeps its images, relative to its folder."""


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Image:
    path: str
    """Relative to the export folder, with forward slashes."""


Part = Text | Image


@dataclass(frozen=True)
class Turn:
    """One user turn and the assistant turn that answers it."""

    parts: tuple[Part, ...]
    """Text and images in the order the protocol sends them."""
    answer: str
    """The gold assistant turn, `ANSWER: <label>`."""
    labels: tuple[str, ...]
    """The labels drawn on this turn's candidates, in order."""
    truth: str
    example: bool
    """An ICIR solved example: shown with its answer, never scored."""

    @property
    def images(self) -> list[str]:
        return [part.path for part in self.parts if isinstance(part, Image)]

    def text(self, image_marker: str, separator: str = "\n") -> str:
        """The turn as one string with `image_marker` where each image goes, parts on their own lines."""
        return separator.join(image_marker if isinstance(part, Image) else part.text for part in self.parts)


@dataclass(frozen=True)
class Conversation:
    kind: str
    task_id: str
    domain: str
    turns: tuple[Turn, ...]

    @property
    def images(self) -> list[str]:
        return [image for turn in self.turns for image in turn.images]

    @property
    def questions(self) -> tuple[Turn, ...]:
        """The scored turns."""
        return tuple(turn for turn in self.turns if not turn.example)

    def inline_examples(self) -> "Conversation":
        """The same conversation with each solved example folded into the first question's text.

        Evaluation harnesses (VLMEvalKit, lmms-eval) play every user turn against the model and put
        its own reply in the history, so a solved example cannot be a separate turn there: it
        becomes text (and images) before the first question, followed by its `ANSWER: <label>` line.
        """
        examples = [turn for turn in self.turns if turn.example]
        if not examples:
            return self
        lead = tuple(part for turn in examples for part in (*turn.parts, Text(turn.answer)))
        questions = list(self.questions)
        questions[0] = replace(questions[0], parts=lead + questions[0].parts)
        return replace(self, turns=tuple(questions))


# ---- Tasks -> conversations ---------------------------------------------------------------------

def export_conversations(store: RunStore, out: Path, step: Callable[[], None] = lambda: None) -> list[Conversation]:
    """Every task of the run as a conversation; its images are written under `out/images/`.

    `step` is called once per task (a progress bar's advance)."""
    conversations = []
    for item in load_tasks(store.root):
        conversations.append(task_conversation(item, out))
        step()
    return conversations


def task_conversation(item: TaskItem, out: Path) -> Conversation:
    """One task: the protocol's script with gold answers, images copied to out/images/<kind>/<task id>/."""
    script = task_script(item)
    folder = out / IMAGES_DIR / item.kind / item.task_id
    folder.mkdir(parents=True, exist_ok=True)
    labelled = {(str(src), label): labelled_image(src, label, folder)
                for question in script.examples + script.questions for label, src in question.choices}
    turns = []
    lead = script.intro
    played = [(question, True) for question in script.examples] + [(question, False) for question in script.questions]
    for question, example in played:
        message = user_turn(question, labelled, lead, script.label_kind)
        lead = None
        parts = tuple(_part(content, folder, out) for content in message["content"])
        _refuse_markers(item, parts)
        turns.append(Turn(parts, PROMPTS["gold_answer"].format(label=question.truth),
                          tuple(label for label, _ in question.choices), question.truth, example))
    return Conversation(item.kind, item.task_id, item.domain or "unknown", tuple(turns))


def _part(content: dict, folder: Path, out: Path) -> Part:
    if content["type"] == "text":
        return Text(content["text"])
    source = Path(content["path"])
    if source.parent != folder:  # a condition image (IOMR): shown as it is, copied beside the labelled ones
        target = folder / source.name
        if not target.exists():
            shutil.copyfile(source, target)
        source = target
    return Image(source.relative_to(out).as_posix())


IMAGE_MARKERS = ("<image>", "<ImageHere>", "<|image_pad|>")
"""What the formats put where an image goes: task text that contains one would shift every image after it."""


def _refuse_markers(item: TaskItem, parts: tuple[Part, ...]) -> None:
    for part in parts:
        if isinstance(part, Text):
            marker = next((m for m in IMAGE_MARKERS if m in part.text), None)
            if marker:
                raise UsageError(f"{item.folder / 'task.json'}: the text contains {marker!r}, which the export "
                                 "formats use to place images; remove it from the task")
