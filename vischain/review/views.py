"""What the pages show, as plain data: a task as the models see it, and the queue's rows.

`task_view` walks the evaluation protocol's own script (agents/protocol/turns.py task_script), so
the page shows what a model is shown: the intro, solved examples, each question's texts and images,
then its candidates with the labels drawn on them, in the same order. Images are named by content
hash; file names appear only on reviewer pages (in a run, an ITMR file named `q1_a` is the correct
image, so a name would give the answer away to annotators and quiz takers).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agents.protocol.prompts import PROMPTS
from agents.protocol.turns import Question, task_script
from schemas.task import TaskItem, TextField, task_images, task_texts, task_turns
from vischain.review.catalog import Catalog, Entry, Evidence
from vischain.review.records import Accuracy, TaskState

PAGE_SIZE = 100
"""Queue rows per page."""


@dataclass(frozen=True)
class ShownPart:
    """Text or an image shown before a question's candidates."""

    text: str | None = None
    image: str | None = None
    """SHA-256 of the image file."""


@dataclass(frozen=True)
class ShownChoice:
    label: str
    image: str
    """SHA-256 of the candidate's file; the page shows its labelled copy."""
    name: str
    """File name in the task folder (reviewer pages only)."""
    pointer: str
    """JSON pointer of the image field."""


@dataclass(frozen=True)
class ShownQuestion:
    number: int
    """Question.number: 1.. for asked questions, 0 for ICIR solved examples."""
    pointer: str
    """JSON pointer of the turn (for a change of truth)."""
    parts: tuple[ShownPart, ...]
    choices: tuple[ShownChoice, ...]
    truth: str
    evidence: Evidence | None
    """Verifier models' answers (reviewer pages only)."""


@dataclass(frozen=True)
class ShownImage:
    """An image field of the task, for the swap and repaint forms."""

    pointer: str
    name: str
    image: str


@dataclass(frozen=True)
class TaskView:
    intro: str
    answer_format: str
    """The line every question ends with, as models read it."""
    examples: tuple[ShownQuestion, ...]
    questions: tuple[ShownQuestion, ...]
    texts: tuple[TextField, ...]
    images: tuple[ShownImage, ...]


def task_view(catalog: Catalog, entry: Entry, item: TaskItem) -> TaskView:
    script = task_script(item)
    turns = task_turns(item.kind, item.task)
    shown_examples = [_question(catalog, q, t, None, item.folder)
                      for q, t in zip(script.examples, [t for t in turns if t.example])]
    shown_questions = [_question(catalog, q, t, entry.evidence.get(q.number), item.folder)
                       for q, t in zip(script.questions, [t for t in turns if not t.example])]
    images = tuple(ShownImage(pointer, name, catalog.images.key(catalog.relative(item.folder / name)))
                   for pointer, name in task_images(item.task))
    return TaskView(script.intro, PROMPTS["answer_format"].format(label_kind=script.label_kind),
                    tuple(shown_examples), tuple(shown_questions), tuple(task_texts(item.kind, item.task)), images)


def _question(catalog: Catalog, question: Question, turn, evidence: Evidence | None, folder: Path) -> ShownQuestion:
    parts = tuple(ShownPart(text=value) if kind == "text" else
                  ShownPart(image=catalog.images.key(catalog.relative(Path(value)))) for kind, value in question.parts)
    choices = tuple(ShownChoice(choice.label, catalog.images.key(catalog.relative(folder / choice.image)),
                                choice.image, choice.pointer) for choice in turn.choices)
    return ShownQuestion(question.number, turn.pointer, parts, choices, question.truth, evidence)


# ---- The queue ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class QueueRow:
    entry: Entry
    state: TaskState
    against: int
    """Verifier models that chose another valid label on at least one question."""
    annotators: Accuracy
    quiz: Accuracy


@dataclass(frozen=True)
class QueueFilter:
    kind: str = ""
    domain: str = ""
    status: str = ""
    page: int = 1


@dataclass(frozen=True)
class QueuePage:
    rows: list[QueueRow]
    total: int
    """Rows matching the filter, all pages."""
    pages: int
    filter: QueueFilter


def models_against(entry: Entry) -> int:
    return len({a.model for e in entry.evidence.values() for a in e.answers
                if a.answer is not None and a.answer != e.truth and not a.skipped})


def queue_page(catalog: Catalog, states: dict[tuple[str, str], TaskState], annotators: dict, quiz: dict,
               wanted: QueueFilter) -> QueuePage:
    """The rows of one page of the queue, in queue order."""
    matching = []
    for entry in catalog.entries:
        state = states.get(entry.key) or TaskState(*entry.key)
        if (wanted.kind and entry.kind != wanted.kind) or (wanted.domain and entry.domain != wanted.domain) \
                or (wanted.status and state.status != wanted.status):
            continue
        matching.append((entry, state))
    pages = max(1, -(-len(matching) // PAGE_SIZE))
    page = min(max(1, wanted.page), pages)
    shown = matching[(page - 1) * PAGE_SIZE:page * PAGE_SIZE]
    rows = [queue_row(entry, state, annotators, quiz) for entry, state in shown]
    return QueuePage(rows, len(matching), pages, QueueFilter(wanted.kind, wanted.domain, wanted.status, page))


def queue_row(entry: Entry, state: TaskState, annotators: dict[tuple[str, str], Accuracy],
              quiz: dict[tuple[str, str], Accuracy]) -> QueueRow:
    return QueueRow(entry, state, models_against(entry), annotators.get(entry.key, Accuracy()),
                    quiz.get(entry.key, Accuracy()))


def next_in_queue(catalog: Catalog, states: dict[tuple[str, str], TaskState], after: Entry) -> Entry | None:
    """The next task after `after` that still waits for a decision, wrapping round; None when none does."""
    waiting = ("pending", "flagged", "reopened", "repaint")
    start = catalog.entries.index(after)
    for entry in catalog.entries[start + 1:] + catalog.entries[:start]:
        if (states.get(entry.key) or TaskState(*entry.key)).status in waiting:
            return entry
    return None
