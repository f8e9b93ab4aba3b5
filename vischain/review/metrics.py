"""Step 2's figures: verifier-model correctness beside human decisions and answers, per task and per kind.

    rows = task_metrics(catalog, store)           # one TaskMetrics per task, queue order
    kinds = kind_metrics(rows, store.passed(t))    # one KindMetrics per task kind
    metrics_csv(rows), kind_chart_svg(kinds)       # the download and the chart of the metrics page
    quality_control(run, include_unreviewed)       # the figures a dataset card reports

Accuracies count answers on each task's current revision only (an edit makes earlier answers answers
to another task). The verifier models' answers are judged against the current truth: their labels
still name the same candidates after an edit, so a moved truth turns their disagreement into
agreement, which is the point of the comparison.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from html import escape
from pathlib import Path

from agents.protocol.turns import task_script
from graphs.profile import ReviewSettings
from schemas.errors import UsageError
from schemas.task import TASK_KINDS
from vischain.review.catalog import Catalog, Entry
from vischain.review.records import Accuracy, TaskState
from vischain.review.store import ReviewStore


@dataclass(frozen=True)
class TaskMetrics:
    kind: str
    task_id: str
    domain: str
    rank: int | None
    status: str
    revision: int
    edits: int
    flags: int
    models: Accuracy
    """Verifier-model answers that name the current truth (skipped questions left out)."""
    annotators: Accuracy
    quiz: Accuracy


@dataclass(frozen=True)
class KindMetrics:
    kind: str
    tasks: int
    reviewed: int
    """Tasks with a reviewer's decision or edit (not pending)."""
    accepted: int
    rejected: int
    edited: int
    flagged: int
    reopened: int
    passed: int
    """Accepted and at or over the quiz threshold: what `vischain publish` takes."""
    models: Accuracy
    annotators: Accuracy
    quiz: Accuracy


@dataclass(frozen=True)
class QualityControl:
    """What a dataset card says about the human review of the tasks it publishes."""

    reviewed: bool
    """Whether the run has a review (review.sqlite)."""
    include_unreviewed: bool
    """Published with --include-unreviewed: tasks that did not pass review are in the dataset."""
    quiz_threshold: float
    people: dict[str, int]
    """role -> people who recorded at least one action."""
    kinds: tuple[KindMetrics, ...]
    published: int
    """Tasks in the dataset."""
    tasks: int
    """Tasks in the run."""


def quiz_threshold(run_dir: Path, store: ReviewStore | None) -> float:
    """The threshold in force: the one the server last ran with (review.sqlite), else the run's recorded
    profile's `review.quiz_threshold`, else ReviewSettings' default."""
    stored = store.meta("quiz_threshold") if store else None
    if stored is not None:
        return float(stored)
    try:
        run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        run = {}
    recorded = (((run.get("config") or {}).get("profile_config") or {}).get("review") or {}).get("quiz_threshold")
    return float(recorded) if isinstance(recorded, (int, float)) else ReviewSettings().quiz_threshold


def task_metrics(catalog: Catalog, store: ReviewStore) -> list[TaskMetrics]:
    states, annotators, quiz = store.states(), store.accuracy("annotator"), store.accuracy("quiz")
    rows = []
    for entry in catalog.entries:
        state = states.get(entry.key) or TaskState(*entry.key)
        rows.append(TaskMetrics(entry.kind, entry.task_id, entry.domain, entry.rank, state.status, state.revision,
                                state.edits, state.flags, _model_accuracy(catalog, entry, state),
                                annotators.get(entry.key, Accuracy()), quiz.get(entry.key, Accuracy())))
    return rows


def _model_accuracy(catalog: Catalog, entry: Entry, state: TaskState) -> Accuracy:
    if not entry.evidence:
        return Accuracy()
    if state.revision == 1:
        truths = {number: evidence.truth for number, evidence in entry.evidence.items()}
    else:  # edited: the truth may have moved, so read it from the current task.json
        truths = {q.number: q.truth for q in task_script(catalog.item(entry)).questions}
    answers = [(a, truths.get(number)) for number, evidence in entry.evidence.items() for a in evidence.answers
               if not a.skipped]
    return Accuracy(sum(a.answer == truth for a, truth in answers), len(answers))


def kind_metrics(rows: list[TaskMetrics], passed: set[tuple[str, str]]) -> list[KindMetrics]:
    kinds = []
    for kind in TASK_KINDS:
        mine = [r for r in rows if r.kind == kind]
        if not mine:
            continue
        count = lambda status: sum(r.status == status for r in mine)
        kinds.append(KindMetrics(
            kind, len(mine), sum(r.status != "pending" or r.edits > 0 for r in mine), count("accepted"),
            count("rejected"), sum(r.edits > 0 for r in mine), count("flagged"), count("reopened"),
            sum((r.kind, r.task_id) in passed for r in mine),
            sum((r.models for r in mine), Accuracy()), sum((r.annotators for r in mine), Accuracy()),
            sum((r.quiz for r in mine), Accuracy())))
    return kinds


def share_text(accuracy: Accuracy) -> str:
    """"83% (10/12)", or "-" with no answers."""
    if not accuracy.answered:
        return "-"
    return f"{accuracy.share:.0%} ({accuracy.right}/{accuracy.answered})"


def metrics_csv(rows: list[TaskMetrics]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["kind", "task_id", "domain", "rank", "status", "revision", "edits", "flags",
                     "model_right", "model_answers", "annotator_right", "annotator_answers", "quiz_right",
                     "quiz_answers"])
    for r in rows:
        writer.writerow([r.kind, r.task_id, r.domain, "" if r.rank is None else r.rank, r.status, r.revision,
                         r.edits, r.flags, r.models.right, r.models.answered, r.annotators.right,
                         r.annotators.answered, r.quiz.right, r.quiz.answered])
    return buffer.getvalue()


SERIES = (("models", "verifier models", "#6b7280"), ("annotators", "annotators", "#2563eb"),
          ("quiz", "quiz takers", "#16a34a"))


def kind_chart_svg(kinds: list[KindMetrics]) -> str:
    """Accuracy per kind as grouped bars, one group per kind: models, annotators, quiz. Inline SVG."""
    bar, gap, group_gap, height, top, left = 26, 4, 36, 160, 20, 40
    width = left + len(kinds) * (len(SERIES) * (bar + gap) + group_gap) + 160
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="accuracy per kind" width="{width}" '
             f'height="{height + top + 40}" font-family="system-ui, sans-serif" font-size="12">']
    for tick in (0, 0.5, 1):
        y = top + height * (1 - tick)
        parts.append(f'<line x1="{left}" x2="{width - 160}" y1="{y}" y2="{y}" stroke="#ddd"/>'
                     f'<text x="{left - 6}" y="{y + 4}" text-anchor="end">{tick:.0%}</text>')
    x = left + 10
    for kind in kinds:
        for name, _, colour in SERIES:
            accuracy: Accuracy = getattr(kind, name)
            if accuracy.answered:
                h = height * accuracy.share
                title = f"{escape(kind.kind)} {name}: {share_text(accuracy)}"
                parts.append(f'<rect x="{x}" y="{top + height - h:.1f}" width="{bar}" height="{h:.1f}" '
                             f'fill="{colour}"><title>{title}</title></rect>')
            else:
                parts.append(f'<text x="{x + bar / 2}" y="{top + height - 4}" text-anchor="middle" '
                             f'fill="#999">–</text>')
            x += bar + gap
        centre = x - (len(SERIES) * (bar + gap)) / 2
        parts.append(f'<text x="{centre}" y="{top + height + 18}" text-anchor="middle">{escape(kind.kind)}</text>')
        x += group_gap
    for i, (_, label, colour) in enumerate(SERIES):
        y = top + 10 + i * 20
        parts.append(f'<rect x="{width - 150}" y="{y - 10}" width="12" height="12" fill="{colour}"/>'
                     f'<text x="{width - 132}" y="{y}">{label}</text>')
    parts.append("</svg>")
    return "".join(parts)


def quality_control(run_dir: Path, published: set[tuple[str, str]], include_unreviewed: bool) -> QualityControl:
    """The card's figures for a run; `published` are the tasks going into the dataset."""
    store = ReviewStore.existing(run_dir)
    threshold = quiz_threshold(run_dir, store)
    if store is None:
        return QualityControl(False, include_unreviewed, threshold, {}, (), len(published), len(published))
    try:
        catalog = Catalog.load(run_dir)
        rows = task_metrics(catalog, store)
        kinds = kind_metrics(rows, store.passed(threshold))
        return QualityControl(True, include_unreviewed, threshold, store.people_who_acted(), tuple(kinds),
                              len(published), len(rows))
    finally:
        store.close()


def publishable_tasks(run_dir: Path, include_unreviewed: bool) -> set[tuple[str, str]] | None:
    """The tasks `vischain publish` may take: accepted and quiz-passed when the run has a review; None (every
    task) without a review or with --include-unreviewed. UsageError when the review passed none."""
    store = ReviewStore.existing(run_dir)
    if store is None or include_unreviewed:
        return None
    try:
        passed = store.passed(quiz_threshold(run_dir, store))
        if not passed:
            accepted = sum(state.status == "accepted" for state in store.states().values())
            raise UsageError(f"RUN: {run_dir / 'review.sqlite'}: no task is both accepted and passed the quiz "
                             f"({accepted} accepted); finish the review, or publish with --include-unreviewed")
        return passed
    finally:
        store.close()
