"""`vischain verify RUN`: the verifier agent. Models answer every task of a generated run; tasks whose
ground truth they contradict are ranked first for human review.

Writes RUN/verify/answers.jsonl, scores.json, priority.jsonl (schemas/priority.schema.json) and
report.html. The models are `--model` flags, else the `--profile`'s verifiers, else the verifiers
of the profile recorded in run.json.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from agents.protocol.turns import HISTORY_MODES
from graphs.verify import EvalSettings
from schemas.errors import UsageError
from vischain.commands.evaluate import (
    ConcurrencyFlag,
    HistoryFlag,
    IcirTextFlag,
    MaxTokensFlag,
    ModelFlag,
    ProfileFlag,
    check_icir_text,
    load_benchmark,
    resolve_models,
    run_models,
    scores_table,
)
from vischain.error_lines import fail, one_line_errors
from vischain.verify_report import write_report

console = Console(emoji=False)
SHOWN = 10
"""Rows of the priority list printed; the rest are in priority.jsonl and report.html."""


def priority_table(priority: list[dict]) -> Table:
    table = Table(title=f"review first ({min(SHOWN, len(priority))} of {len(priority)} tasks)")
    for column in ("rank", "kind", "task", "domain", "score", "models against the truth"):
        table.add_column(column, overflow="fold")
    for entry in priority[:SHOWN]:
        against = sorted({a["model"] for e in entry["evidence"] for a in e["answers"]
                          if not a["correct"] and not a.get("format_error") and not a.get("skipped")})
        table.add_row(str(entry["rank"]), entry["kind"], entry["task_id"], str(entry["domain"]),
                      f"{entry['score']:.3f}", ", ".join(against) or "-")
    return table


def verify(
    run: Annotated[Path, typer.Argument(help="A run folder (has run.json).")],
    profile: ProfileFlag = None,
    model: ModelFlag = None,
    history: HistoryFlag = "model",
    concurrency: ConcurrencyFlag = 8,
    max_tokens: MaxTokensFlag = 256,
    icir_text: IcirTextFlag = "none",
):
    """Run verifier models over a run and write the error-priority list and a review page."""
    if not (run / "run.json").is_file():
        fail(f"RUN: {run} is not a run folder (no run.json); `vischain eval` scores other folders")
    with one_line_errors():
        if history not in HISTORY_MODES:
            raise UsageError(f"--history: {history!r} is not one of {', '.join(HISTORY_MODES)}")
        check_icir_text(icir_text)
        tasks = load_benchmark(run)
        if not model and not profile:
            profile = json.loads((run / "run.json").read_text()).get("config", {}).get("profile")
            if not profile:
                raise UsageError("--model: name verifier models (or --profile); run.json names no profile")
        specs = resolve_models(model, profile, concurrency)
        settings = EvalSettings(history=history, concurrency=concurrency, max_tokens=max_tokens, icir_text=icir_text)
        out = run / "verify"
        result = run_models(run, out, tasks, specs, settings, rank=True)
    priority = [json.loads(line) for line in Path(result.priority_file).read_text().splitlines() if line]
    report = write_report(out / "report.html", priority, tasks, out / "labels", f"vischain verify: {run.name}")
    console.print(scores_table(json.loads(Path(result.scores_file).read_text())))
    console.print(priority_table(priority))
    console.print(f"{result.new_answers} new answer(s), {result.model_calls} model call(s); "
                  f"priority: {result.priority_file}; report: {report}", highlight=False)
