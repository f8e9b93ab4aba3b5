"""The review stage's records: roles and statuses, what the store hands out (reviewers, task
states, events, revisions, answers), and how one event changes a task's state.

The store (review.sqlite, vischain/review/store.py) appends events and keeps the state derived from
them; `apply_event` is that derivation, the one place a task's status, revision and marks change.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

ROLES = ("reviewer", "annotator", "quiz")
"""reviewer: decides and edits (steps 1 and 2); annotator: answers with the truth shown after; quiz:
answers blind (step 3)."""
STATUSES = ("pending", "accepted", "rejected", "flagged", "repaint", "reopened")
"""A task's review status. pending: nobody decided yet; flagged: a reviewer or annotator raised a
doubt; repaint: an image is marked for repainting; reopened: the quiz went under the threshold."""
DECISIONS = {"accept": "accepted", "reject": "rejected", "flag": "flagged"}
"""Reviewer actions that set a status directly."""


class Conflict(Exception):
    """The task changed since the person loaded it; nothing was saved. The message says what changed."""


# ---- What the store hands out ---------------------------------------------------------------------

@dataclass(frozen=True)
class Reviewer:
    id: int
    name: str
    role: str
    """One of ROLES."""


@dataclass(frozen=True)
class QuizResult:
    """The quiz figures a task reopened with."""

    right: int
    answered: int
    threshold: float

    @property
    def accuracy(self) -> float:
        return self.right / self.answered if self.answered else 0.0


@dataclass(frozen=True)
class TaskState:
    kind: str
    task_id: str
    status: str = "pending"
    revision: int = 1
    """The task.json revision under review; 1 is the text as generated."""
    note: str | None = None
    """The reason of a rejection or the note of the last flag."""
    flags: int = 0
    edits: int = 0
    repaint: tuple[str, ...] = ()
    """JSON pointers of the images marked for repainting."""
    quiz: QuizResult | None = None
    """Set when the quiz reopened the task."""


@dataclass(frozen=True)
class HumanAnswer:
    question: int
    """Question.number, as the protocol numbers the asked questions."""
    label: str
    truth: str
    """The truth of the revision answered."""

    @property
    def correct(self) -> bool:
        return self.label == self.truth


@dataclass(frozen=True)
class Accuracy:
    right: int = 0
    answered: int = 0

    @property
    def share(self) -> float | None:
        return self.right / self.answered if self.answered else None

    def __add__(self, other: Accuracy) -> Accuracy:
        return Accuracy(self.right + other.right, self.answered + other.answered)


@dataclass(frozen=True)
class Event:
    id: int
    time: str
    reviewer: str | None
    """The person's name; None for the system (a quiz reopening a task, a change outside review)."""
    role: str | None
    kind: str
    task_id: str
    action: str
    """accept, reject, flag, repaint, edit, external, annotate, quiz or reopen."""
    revision: int
    """The revision acted on (edit, external: the revision made)."""
    detail: dict = field(default_factory=dict)
    """The action's own fields as stored: reason, note, pointer, answers, quiz figures."""
    before: dict = field(default_factory=dict)
    after: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Revision:
    number: int
    text: str
    sha256: str
    event_id: int | None
    """The edit or external event that made it; None for revision 1 (as generated)."""


# ---- The derivation: one event applied to one task's state ------------------------------------------

def apply_event(state: TaskState, action: str, revision: int, detail: dict) -> TaskState:
    """The state after one event. Every derived field comes from here, in the log's order."""
    fields = {}
    if action in DECISIONS:
        fields = {"status": DECISIONS[action], "note": detail.get("reason") or detail.get("note") or None}
        if action == "accept":
            fields["repaint"] = ()  # accepted as it stands: nothing is waiting for a repaint any more
        if action == "flag":
            fields["flags"] = state.flags + 1
    elif action == "repaint":
        fields = {"status": "repaint", "repaint": tuple(sorted({*state.repaint, detail["pointer"]}))}
    elif action == "edit":
        fields = {"revision": revision, "edits": state.edits + 1}
    elif action == "external":
        fields = {"revision": revision}
    elif action == "reopen":
        fields = {"status": "reopened", "quiz": QuizResult(detail["right"], detail["answered"], detail["threshold"])}
    elif action not in ("annotate", "quiz"):
        raise ValueError(f"unknown review action {action!r}")
    return replace(state, **fields)


def changed_fields(before: TaskState, after: TaskState, side: str) -> dict:
    """The state fields an event changed, as they were (side="before") or became."""
    keys = [k for k in ("status", "revision", "note", "flags", "edits", "repaint")
            if getattr(before, k) != getattr(after, k)]
    source = before if side == "before" else after
    return {k: list(v) if isinstance(v := getattr(source, k), tuple) else v for k in keys}
