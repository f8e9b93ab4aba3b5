"""verify/report.html: the priority list as one self-contained page a reviewer scrolls.

Tasks in priority order; for each question its text, context images, the labelled candidates as
the models saw them (the ground truth framed in green) and every model's answer beside them. Images
are embedded as base64 JPEG thumbnails (no external files, so the page can be mailed or archived);
every piece of text goes through html.escape.
"""

from __future__ import annotations

import base64
import io
from html import escape
from pathlib import Path

from PIL import Image

from agents.protocol.labels import labelled_image
from agents.protocol.turns import Question, task_script
from schemas.durable_files import write_atomically
from schemas.task import TaskItem

THUMBNAIL_PX = 256
"""Longest side of an embedded image: at JPEG quality 80 a 256 px thumbnail is ~10-20 KB, so a
1,000-task run's report stays in the low hundreds of MB while the drawn labels (12% of the short
side) stay readable."""

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
section{border-top:2px solid #999;padding:1em 0}
.q{margin:1em 0 1.5em 1em}
.imgs{display:flex;flex-wrap:wrap;gap:8px;align-items:flex-end}
figure{margin:0;text-align:center;font-size:0.85em}
figure img{border:4px solid transparent;max-width:256px}
figure.truth img{border-color:#1a8f2e}
table{border-collapse:collapse;margin-top:0.5em}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}
.wrong{background:#fde2e2}.format{background:#fff3cd}.right{background:#e3f6e7}
pre{white-space:pre-wrap;margin:0;font-size:0.85em;max-width:500px}
"""


def data_url(path: str | Path) -> str:
    """A JPEG thumbnail of the image as a data: URL."""
    with Image.open(path) as image:
        thumbnail = image.convert("RGB")
    thumbnail.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
    buffer = io.BytesIO()
    thumbnail.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(path: Path, caption: str, is_truth: bool = False) -> str:
    css = ' class="truth"' if is_truth else ""
    return (f'<figure{css}><img src="{data_url(path)}" alt="{escape(caption)}">'
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def _answers_table(answers: list[dict]) -> str:
    rows = []
    for a in answers:
        verdict = ("skipped" if a.get("skipped") else "right" if a["correct"]
                   else "format error" if a.get("format_error") else "wrong")
        css = {"right": "right", "wrong": "wrong", "format error": "format"}.get(verdict, "")
        rows.append(f'<tr class="{css}"><td>{escape(a["model"])}</td><td>{a.get("model_weight", 0):.3f}</td>'
                    f'<td>{escape(a["answer"] or "—")}</td><td>{verdict}</td>'
                    f'<td><pre>{escape(a.get("reply") or "")}</pre></td></tr>')
    head = "<tr><th>model</th><th>weight</th><th>answer</th><th>verdict</th><th>reply</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def _question_html(question: Question, evidence: dict, labels_dir: Path) -> str:
    parts = []
    for kind, value in question.parts:
        parts.append(f"<p>{escape(value)}</p>" if kind == "text" else _figure(Path(value), Path(value).name))
    chosen: dict[str, list[str]] = {}
    for answer in evidence.get("answers", []):
        if answer["answer"] is not None:
            chosen.setdefault(answer["answer"], []).append(answer["model"])
    candidates = []
    for label, source in question.choices:
        caption = f"{label}{' (truth)' if label == question.truth else ''}"
        if label in chosen:
            caption += " ← " + ", ".join(chosen[label])
        candidates.append(_figure(labelled_image(source, label, labels_dir), caption, label == question.truth))
    return (f'<div class="q"><h3>Question {question.number} — truth {escape(question.truth)}</h3>{"".join(parts)}'
            f'<div class="imgs">{"".join(candidates)}</div>{_answers_table(evidence.get("answers", []))}</div>')


def task_html(entry: dict, item: TaskItem, labels_dir: Path) -> str:
    script = task_script(item)
    evidence = {e["question"]: e for e in entry["evidence"]}
    examples = f"<p>{len(script.examples)} solved example step(s) shown first.</p>" if script.examples else ""
    questions = "".join(_question_html(q, evidence.get(q.number, {}), labels_dir) for q in script.questions)
    title = (f"#{entry['rank']} · {escape(entry['kind'])} · {escape(entry['task_id'])} · score {entry['score']:.3f}"
             f" · domain {escape(str(entry.get('domain')))}")
    return (f'<section id="{escape(entry["kind"])}-{escape(entry["task_id"])}"><h2>{title}</h2>'
            f"<p>{escape(script.intro)}</p>{examples}{questions}</section>")


def render_report(priority: list[dict], tasks: list[TaskItem], labels_dir: Path, title: str) -> str:
    """The whole page: tasks in the order of `priority` (lines of priority.jsonl)."""
    by_key = {(t.kind, t.task_id): t for t in tasks}
    index = "".join(f'<li><a href="#{escape(e["kind"])}-{escape(e["task_id"])}">#{e["rank"]} '
                    f'{escape(e["kind"])} {escape(e["task_id"])}</a> — {e["score"]:.3f}</li>' for e in priority)
    body = "".join(task_html(e, by_key[(e["kind"], e["task_id"])], labels_dir) for e in priority)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>"
            f"<p>Tasks most contradicted by the verifier models first. Green frame: the ground truth.</p>"
            f"<ol>{index}</ol>{body}</body></html>")


def write_report(path: Path, priority: list[dict], tasks: list[TaskItem], labels_dir: Path, title: str) -> Path:
    return write_atomically(path, render_report(priority, tasks, labels_dir, title))
