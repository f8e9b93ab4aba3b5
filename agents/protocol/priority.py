"""The verifier's error-priority list: which tasks a human should review first.

VisChainBench's verifier runs models over the generated tasks and flags "cases where model
predictions conflict with ground truth labels". We rank every task by how strongly the models
contradict its ground truth:

    weight(model, task) = profile weight x accuracy of the model on the *other* tasks
    score(task)         = sum over questions and models of weight(model, task) x
                          (1 if the model chose another valid label, FORMAT_ERROR_SHARE if it
                           gave no valid label, 0 if it agreed or the question was skipped)

Leave-one-task-out keeps a wrong ground truth from lowering the weight of the models that caught
it. A model that is right elsewhere and disagrees here is strong evidence; a model that is wrong
everywhere is weak evidence; several models disagreeing add up.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from agents.protocol.turns import task_script
from schemas.task import TaskItem

FORMAT_ERROR_SHARE = 0.25
"""A reply with no valid label says little about the ground truth (tiny models give one on ~every
question), so it counts a quarter of a disagreement: it can break ties but not outrank a contradiction."""
REPLY_CHARS = 400
"""Raw replies in the evidence are cut to this many characters."""


def loo_accuracy(lines: list[dict]) -> dict[tuple[str, str, str], float]:
    """(model, kind, task_id) -> the model's accuracy on every other task, Laplace-smoothed.

    (right + 1) / (answered + 2): a model with no other answers gets 0.5, not 0 or a division by zero.
    Skipped questions (history=stop_on_error) are not answers and do not count.
    """
    per_task: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for line in lines:
        if line.get("skipped"):
            continue
        key = (line["model"], line["kind"], line["task_id"])
        for tally in (per_task[key], totals[line["model"]]):
            tally[0] += bool(line["correct"])
            tally[1] += 1
    return {key: (totals[key[0]][0] - right + 1) / (totals[key[0]][1] - answered + 2)
            for key, (right, answered) in per_task.items()}


def disagreement(line: dict) -> float:
    """How much one answer contradicts the ground truth: 1, FORMAT_ERROR_SHARE or 0."""
    if line.get("skipped") or line["correct"]:
        return 0.0
    return FORMAT_ERROR_SHARE if line["format_error"] else 1.0


def rank_tasks(lines: list[dict], tasks: list[TaskItem], profile_weights: dict[str, float],
               root: Path) -> list[dict]:
    """Priority lines (schemas/priority.schema.json), most suspicious task first.

    lines: answer lines of every verifier model; profile_weights: model -> weight from the profile
    (1.0 when absent); root: image paths in the evidence are relative to it.
    """
    accuracy = loo_accuracy(lines)
    by_question: dict[tuple[str, str, int], list[dict]] = defaultdict(list)
    for line in lines:
        by_question[(line["kind"], line["task_id"], line["question"])].append(line)
    entries = []
    for item in tasks:
        evidence, score = [], 0.0
        for question in task_script(item).questions:
            answers = []
            for line in sorted(by_question[(item.kind, item.task_id, question.number)], key=lambda a: a["model"]):
                weight = profile_weights.get(line["model"], 1.0) * accuracy.get(
                    (line["model"], item.kind, item.task_id), 0.5)
                score += weight * disagreement(line)
                answers.append(_evidence_answer(line, weight))
            images = [_relative(src, root) for _, src in question.choices]
            evidence.append({"question": question.number, "truth": question.truth, "images": images,
                             "answers": answers})
        entries.append({"task_id": item.task_id, "kind": item.kind, "domain": item.domain,
                        "score": round(score, 4), "evidence": evidence})
    entries.sort(key=lambda e: (-e["score"], e["kind"], e["task_id"]))
    return [{"rank": rank, **entry} for rank, entry in enumerate(entries, start=1)]


def _evidence_answer(line: dict, weight: float) -> dict:
    reply = line.get("reply")
    return {"model": line["model"], "answer": line["label"], "correct": bool(line["correct"]),
            "format_error": bool(line["format_error"]), "skipped": bool(line.get("skipped")),
            "model_weight": round(weight, 4), "reply": None if reply is None else reply[:REPLY_CHARS]}


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)
