"""Results in the layout of the paper's Table 1: rows = variants, columns C2 C3 C4 C5 C6 C4-6 C2-6.

`build_results` turns predictions and judgments into one JSON-able dict (written as results.json);
`markdown` renders one or more of them as a table with, under each variant's SimRate row, a row
of n (judged predictions per column) and, on request, the paper's number for the same cell.

Two SimRates per cell, each with its n (the variant's stories with the column's scene count,
C4-6: 4 to 6 scenes); unparseable verdicts count as No in both and are listed:
- `simrate` over the judged predictions (n): what the model said when it could answer;
- `simrate_all` over every prediction (n_all = judged + too long + failed): too-long and failed
  predictions count as not similar. This is the paper's denominator (its code never refused a
  story: over-long prompts were cut and still answered), so this is the figure to hold against
  Table 1. It is None while any `ok` prediction has no judgment yet (it could be a Yes).
Too-long, failed and unjudged counts are listed under the table, never silently dropped.

    results = build_results(predictions, judgments, judge.info(), meta)
    print(markdown([results], paper=True))
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from imagechain.data.buckets import EVAL_BUCKETS
from imagechain.data.conversation import VARIANTS
from imagechain.eval.chart import simrate_chart
from imagechain.eval.cue_f1 import Scores, macro
from imagechain.eval.predict import PredictionRecord, prediction_id
from imagechain.eval.simrate import JudgeInfo, JudgmentRecord, SimRateCell, simrate
from schemas.errors import DataError, read_json

RESULTS_KIND = "imagechain-results"
MEMENTOS_RESULTS_KIND = "imagechain-mementos-results"  # Table 3 (imagechain.eval.mementos_eval)
COLUMNS = tuple(EVAL_BUCKETS)  # C2, C3, C4, C5, C6, C4-6, C2-6
# The paper's Table 1 (SimRate %, every model trained on C2-7), for printing beside ours.
PAPER_TABLE1 = {
    "MLLM": (5.20, 2.36, 1.67, 1.92, 0.00, 1.58, 3.70),
    "MLLM-ICL": (0.19, 0.34, 0.00, 0.00, 0.00, 0.00, 0.20),
    "MLLM-FT": (18.11, 19.59, 15.83, 3.85, 15.38, 12.13, 17.52),
    "VisualContext": (12.52, 16.22, 11.67, 1.92, 15.38, 8.96, 13.01),
    "FinalScene": (9.63, 10.47, 11.67, 1.92, 7.69, 8.44, 9.71),
    "ImageChain-NoFT": (6.94, 6.08, 12.50, 0.00, 15.38, 8.96, 7.11),
    "ImageChain": (18.30, 21.28, 19.17, 9.62, 30.77, 16.87, 19.02),
}


class ResultsCell(SimRateCell):
    """One (row, column) of the table: SimRate of the judged predictions, and those not judged."""

    too_long: int
    errors: int
    unjudged: int
    """`ok` predictions without a judgment from this run's judge."""
    n_all: int
    """Every prediction of the cell: judged, too long and failed."""
    simrate_all: float | None
    """Yes verdicts over n_all (too long and failed count as No): the paper's denominator; None while
    any ok prediction is unjudged, or when n_all is 0."""


def all_stories(cell: dict) -> tuple[float | None, int]:
    """(SimRate over every prediction, n_all) of a cell; computed from its counts, so older results
    files without `simrate_all` print it too."""
    n_all = cell["n"] + cell.get("too_long", 0) + cell.get("errors", 0)
    if cell.get("unjudged") or not n_all:
        return None, n_all
    return round(100.0 * cell["yes"] / n_all, 2), n_all


def in_column(num_scenes: int, column: str) -> bool:
    low, high = EVAL_BUCKETS[column]
    return low <= num_scenes <= high


def _row_keys(predictions: Sequence[PredictionRecord]) -> list[tuple[str, str]]:
    keys = sorted({(p["variant"], p["model"]) for p in predictions},
                  key=lambda k: (list(VARIANTS).index(k[0]) if k[0] in VARIANTS else len(VARIANTS), k))
    return keys


def _cell(predictions: list[PredictionRecord], judgments: dict[str, JudgmentRecord]) -> ResultsCell:
    verdicts = [judgments[prediction_id(p)] for p in predictions
                if p.get("status") == "ok" and prediction_id(p) in judgments]
    cell = {**simrate(verdicts), "too_long": sum(1 for p in predictions if p.get("status") == "too_long"),
            "errors": sum(1 for p in predictions if p.get("status") == "error"),
            "unjudged": sum(1 for p in predictions if p.get("status") == "ok") - len(verdicts)}
    cell["simrate_all"], cell["n_all"] = all_stories(cell)
    return ResultsCell(**cell)


def build_results(predictions: Sequence[PredictionRecord], judgments: dict[str, JudgmentRecord],
                  judge_info: JudgeInfo, meta: dict) -> dict:
    """The results dict: judge, run settings (`meta`) and one row per (variant, model) with a cell per column."""
    rows = []
    for variant, model in _row_keys(predictions):
        mine = [p for p in predictions if p["variant"] == variant and p["model"] == model]
        cells = {c: _cell([p for p in mine if in_column(p["num_scenes"], c)], judgments) for c in COLUMNS}
        rows.append({"variant": variant, "model": model, "judge": judge_info.get("name"), "cells": cells})
    return {"kind": RESULTS_KIND, "version": 1, "judge": judge_info, "columns": list(COLUMNS), **meta, "rows": rows}


def add_cue_f1(results: dict, predictions: Sequence[PredictionRecord], scored: dict[str, dict[str, Scores] | None],
               settings: dict) -> None:
    """Add macro cue F1 per row and column; `scored` maps prediction_id -> {"behaviour": Scores, "object": ...}."""
    results["cue_f1"] = settings
    for row in results["rows"]:
        mine = [p for p in predictions if p["variant"] == row["variant"] and p["model"] == row["model"]]
        row["cue_f1"] = {}
        for kind in ("behaviour", "object"):
            row["cue_f1"][kind] = {c: macro([scored[prediction_id(p)][kind] for p in mine
                                             if in_column(p["num_scenes"], c) and scored.get(prediction_id(p))])
                                   for c in COLUMNS}
        row["cue_f1"]["failed_extractions"] = sum(1 for p in mine if prediction_id(p) in scored
                                                  and scored[prediction_id(p)] is None)


def load_results(path: str | Path) -> dict:
    """A results.json of `imagechain eval`: Table 1 (StoryFrames) or Table 3 (Mementos), by its `kind`."""
    results = read_json(path, "results file")
    if not isinstance(results, dict) or results.get("kind") not in (RESULTS_KIND, MEMENTOS_RESULTS_KIND):
        raise DataError(f"{path}: not an ImageChain results file (kind {RESULTS_KIND!r} or "
                        f"{MEMENTOS_RESULTS_KIND!r} expected)")
    return results


def merge(all_results: Sequence[dict]) -> dict:
    """One results dict holding every row; rows are labelled so that none is ambiguous."""
    rows = [row for results in all_results for row in results["rows"]]
    variants = [row["variant"] for row in rows]
    judges = {row.get("judge") for row in rows}
    for row in rows:
        label = row["variant"]
        if variants.count(row["variant"]) > 1:
            label += f" [{row['model']}]"
        if len(judges) > 1:
            label += f" {{{row.get('judge')}}}"
        row["label"] = label
    # A merged file (from `imagechain report --out`) lists its judges; a run's file has one.
    infos = [info for r in all_results for info in ([r["judge"]] if "judge" in r else r.get("judges", []))]
    judge_infos = {json.dumps(info, sort_keys=True): info for info in infos}
    return {"kind": RESULTS_KIND, "version": 1, "columns": list(COLUMNS), "judges": list(judge_infos.values()),
            "rows": rows}


def _number(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def _table(rows: Sequence[dict], metric, paper: bool, also=None) -> list[str]:
    """Rows of `metric(row, column) -> (value, n)` with n under each; `also` adds a second (value, n)
    pair under a label of its own, `paper` the paper's Table 1 row."""
    lines = ["| Model | " + " | ".join(COLUMNS) + " |", "|---|" + "---:|" * len(COLUMNS)]
    indent = "&nbsp;&nbsp;"
    for row in rows:
        label = row.get("label", row["variant"])
        lines.append(f"| {label} | " + " | ".join(_number(metric(row, c)[0]) for c in COLUMNS) + " |")
        lines.append(f"| {indent}n | " + " | ".join(str(metric(row, c)[1]) for c in COLUMNS) + " |")
        if also is not None:
            name, extra = also
            lines.append(f"| {indent}{name} | " + " | ".join(_number(extra(row, c)[0]) for c in COLUMNS) + " |")
            lines.append(f"| {indent}n all | " + " | ".join(str(extra(row, c)[1]) for c in COLUMNS) + " |")
        if paper and row["variant"] in PAPER_TABLE1:
            lines.append(f"| {indent}paper | " + " | ".join(f"{v:.2f}" for v in PAPER_TABLE1[row["variant"]])
                         + " |")
    return lines


def _judge_lines(judges: Sequence[JudgeInfo]) -> list[str]:
    lines = []
    for judge in judges:
        text = f"Judge: `{judge.get('name')}`"
        if judge.get("prompt_sha256"):
            text += f", prompt {judge.get('prompt')} sha256 `{judge['prompt_sha256']}`"
        lines.append(text + ".")
        if not judge.get("paper_metric", False):
            lines.append(f"**Not the paper's metric.** {judge.get('note', '')}")
    return lines


def _notes(rows: Sequence[dict]) -> list[str]:
    notes = []
    for row in rows:
        cell = row["cells"]["C2-6"]
        parts = [f"{cell[k]} {k.replace('_', ' ')}" for k in ("unparseable", "too_long", "errors", "unjudged")
                 if cell.get(k)]
        if parts:
            notes.append(f"- {row.get('label', row['variant'])} (C2-6): " + ", ".join(parts))
    if notes:
        notes.insert(0, "Unparseable verdicts count as No; too long / errors are in n all, not in n; "
                        "unjudged predictions leave the all-stories figure open (-):")
    return notes


def markdown(all_results: Sequence[dict], paper: bool = False) -> str:
    """The merged results as markdown: SimRate table, notes, and cue F1 tables where present."""
    merged = merge(all_results)
    rows = merged["rows"]
    out = ["## SimRate (%) by evaluation context length", "", *_judge_lines(merged["judges"]), ""]
    out += ["Under each variant: SimRate over its judged predictions (n), then over all its stories with "
            "too-long and failed predictions counted as not similar (n all: the paper's denominator).", ""]
    out += _table(rows, lambda row, c: (row["cells"][c]["simrate"], row["cells"][c]["n"]), paper,
                  also=("all stories", lambda row, c: all_stories(row["cells"][c])))
    if paper:
        out += ["", "paper: ImageChain (arXiv 2502.19409) Table 1, LLaVA-v1.6-Vicuna-7B trained on C2-7, "
                    "judged by Llama-3-70B."]
    notes = _notes(rows)
    out += ["", *notes] if notes else []
    cue_rows = [row for row in rows if row.get("cue_f1")]
    for kind in ("behaviour", "object") if cue_rows else ():
        out += ["", f"## Cue F1 ({kind}, macro %)", ""]
        out += _table(cue_rows, lambda row, c, k=kind: (row["cue_f1"][k][c]["f1"], row["cue_f1"][k][c]["n"]), False)
    return "\n".join(out) + "\n"


def write_report(all_results: Sequence[dict], out: Path, paper: bool = False) -> dict[str, Path]:
    """results.json (merged), results.md and simrate.png under `out`; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    merged = merge(all_results) if len(all_results) > 1 else all_results[0]
    paths = {"json": out / "results.json", "markdown": out / "results.md", "png": out / "simrate.png"}
    paths["json"].write_text(json.dumps(merged, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    paths["markdown"].write_text(markdown(all_results, paper), encoding="utf-8")
    simrate_chart(merge(all_results)["rows"], COLUMNS, paths["png"])
    return paths
