"""VisChainBench metrics from answer lines: CA, TC and format errors, with bootstrap intervals.

    CA  (completion accuracy) = questions answered right / questions
    TC  (task completion)     = tasks with every question right / tasks
    format error rate         = replies with no valid `ANSWER: <label>` / questions

Each figure is given overall (micro: every question and task counts once), as a macro mean over the
task kinds present (the paper's "Overall" formula is not recoverable, so both are reported and
named), per kind and per domain, with the number of questions and tasks behind it and a 95%
percentile-bootstrap interval from resampling tasks (questions of one task are not independent:
a multi-turn task's later answers depend on its earlier ones).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Bootstrap:
    """How the intervals are drawn."""

    resamples: int = 1000
    """Resamples over tasks; 1000 puts the 2.5% and 97.5% percentiles within about +-1 point."""
    seed: int = 0
    """Every group starts from this seed, so a figure does not depend on which groups exist."""
    level: float = 0.95
    """Central coverage of the interval."""


@dataclass(frozen=True)
class TaskTally:
    """One model's results on one task."""

    kind: str
    domain: str
    questions: int
    correct: int
    format_errors: int


def tally_tasks(lines: list[dict]) -> list[TaskTally]:
    """Answer lines of one model -> one tally per task, in first-seen order."""
    grouped: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for line in lines:
        grouped[(line["kind"], line["task_id"])].append(line)
    return [TaskTally(kind, group[0].get("domain") or "unknown", len(group),
                      sum(bool(a["correct"]) for a in group), sum(bool(a["format_error"]) for a in group))
            for (kind, _), group in grouped.items()]


def _samples(tallies: list[TaskTally], boot: Bootstrap) -> dict[str, np.ndarray]:
    """Bootstrap samples of CA, TC and format-error rate; index 0 holds the point estimate."""
    questions = np.array([t.questions for t in tallies], dtype=float)
    correct = np.array([t.correct for t in tallies], dtype=float)
    formats = np.array([t.format_errors for t in tallies], dtype=float)
    complete = (correct == questions).astype(float)
    rng = np.random.default_rng(boot.seed)
    picks = rng.integers(0, len(tallies), size=(boot.resamples, len(tallies)))
    picks = np.vstack([np.arange(len(tallies)), picks])  # row 0: the data itself
    asked = questions[picks].sum(axis=1)
    return {"ca": correct[picks].sum(axis=1) / asked, "tc": complete[picks].mean(axis=1),
            "format_error_rate": formats[picks].sum(axis=1) / asked}


def _figure(samples: dict[str, np.ndarray], boot: Bootstrap, **counts) -> dict:
    tail = 100 * (1 - boot.level) / 2
    out = {}
    for name, values in samples.items():
        low, high = np.percentile(values[1:], [tail, 100 - tail])
        out[name] = round(float(values[0]), 4)
        out[f"{name}_ci"] = [round(float(low), 4), round(float(high), 4)]
    return {**out, **counts}


def figure(tallies: list[TaskTally], boot: Bootstrap = Bootstrap()) -> dict:
    """CA, TC and format-error rate with intervals, and the counts behind them."""
    return _figure(_samples(tallies, boot), boot, questions=sum(t.questions for t in tallies),
                   tasks=len(tallies), format_errors=sum(t.format_errors for t in tallies))


def score_model(lines: list[dict], boot: Bootstrap = Bootstrap()) -> dict:
    """Every figure for one model's answer lines."""
    tallies = tally_tasks(lines)
    by_kind = {kind: [t for t in tallies if t.kind == kind] for kind in sorted({t.kind for t in tallies})}
    by_domain = {d: [t for t in tallies if t.domain == d] for d in sorted({t.domain for t in tallies})}
    # Macro: each kind's bootstrap resamples its own tasks; the macro sample is their mean.
    kind_samples = [_samples(group, boot) for group in by_kind.values()]
    macro = {name: np.mean([s[name] for s in kind_samples], axis=0) for name in ("ca", "tc", "format_error_rate")}
    return {
        "overall": figure(tallies, boot),
        "overall_macro": _figure(macro, boot, kinds=len(by_kind)),
        "by_kind": {kind: figure(group, boot) for kind, group in by_kind.items()},
        "by_domain": {domain: figure(group, boot) for domain, group in by_domain.items()},
    }


def score_answers(lines: list[dict], boot: Bootstrap = Bootstrap()) -> dict[str, dict]:
    """model -> score_model(its lines), for answer lines of any number of models."""
    by_model: dict[str, list[dict]] = defaultdict(list)
    for line in lines:
        by_model[line["model"]].append(line)
    return {model: score_model(group, boot) for model, group in by_model.items()}
