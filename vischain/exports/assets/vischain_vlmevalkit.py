"""VisChain multi-turn tasks for VLMEvalKit: the dataset class, and a launcher for VLMEvalKit's run.py.

Written by `vischain export --format vlmevalkit-mt` beside the TSV it reads. Run it to evaluate:

    python vischain_vlmevalkit.py --vlmevalkit PATH/TO/VLMEvalKit --model Qwen2-VL-7B-Instruct [run.py args]

It registers `VisChainMT` with VLMEvalKit (so `--data NAME` finds it, NAME being the TSV's name
without .tsv) and runs VLMEvalKit's own run.py. Scoring follows the VisChainBench protocol as
`vischain eval` applies it: the last `ANSWER: <label>` in a reply counts; a reply without one, or
naming a label the turn did not show, is wrong and a format error. CA = questions right / questions,
TC = tasks with every question right / tasks.
"""

import argparse
import json
import os
import os.path as osp
import re
import runpy
import sys

import pandas as pd
from vlmeval.dataset.image_mt import ImageMTDataset
from vlmeval.smp import load, toliststr

HERE = osp.dirname(osp.abspath(__file__))
TSV = next(osp.join(HERE, name) for name in sorted(os.listdir(HERE)) if name.endswith(".tsv"))
DATASET = osp.splitext(osp.basename(TSV))[0]


def parse_answer(reply, labels):
    """The last `ANSWER: <label>` in the reply if it names one of `labels`; None is a format error."""
    token = r"\d+" if all(label.isdigit() for label in labels) else r"[A-Za-z]"
    pattern = re.compile(rf"ANSWER\s*:\s*[\[(\"'*]*\s*({token})(?![A-Za-z0-9])", re.IGNORECASE)
    found = pattern.findall(reply or "")
    if not found:
        return None
    label = found[-1].upper().lstrip("0") or "0"
    return label if label in labels else None


def score_rows(rows):
    """[(kind, predictions, labels per turn, truth per turn)] -> one row per scope: CA, TC, format errors."""
    tallies = []
    for kind, predictions, labels, truths in rows:
        answers = [parse_answer(reply, shown) for reply, shown in zip(predictions, labels)]
        right = sum(answer == truth for answer, truth in zip(answers, truths))
        tallies.append((kind, len(truths), right, sum(answer is None for answer in answers)))
    scopes = {"overall": tallies}
    for kind in sorted({t[0] for t in tallies}):
        scopes[kind] = [t for t in tallies if t[0] == kind]
    table = []
    for scope, group in scopes.items():
        questions = sum(t[1] for t in group)
        table.append({"scope": scope, "CA": sum(t[2] for t in group) / questions,
                      "TC": sum(t[2] == t[1] for t in group) / len(group),
                      "format_error_rate": sum(t[3] for t in group) / questions,
                      "questions": questions, "tasks": len(group)})
    return pd.DataFrame(table)


class VisChainMT(ImageMTDataset):
    """ImageMTDataset over the TSV beside this file; build_prompt is ImageMTDataset's own."""

    TYPE = "MT"
    DATASET_URL = {DATASET: ""}
    DATASET_MD5 = {}

    def load_data(self, dataset):
        return load(TSV)

    def evaluate(self, eval_file, **judge_kwargs):
        data = load(eval_file)
        truth = {str(index): (kind, json.loads(labels), json.loads(truths)) for index, kind, labels, truths
                 in zip(self.data["index"], self.data["kind"], self.data["labels"], self.data["truth"])}
        rows = []
        for index, prediction in zip(data["index"], data["prediction"]):
            kind, labels, truths = truth[str(index)]
            rows.append((kind, toliststr(prediction), labels, truths))
        scores = score_rows(rows)
        scores.to_csv(osp.splitext(eval_file)[0] + "_vischain_score.csv", index=False)
        return scores


def register():
    """Make `--data DATASET` resolve to VisChainMT in VLMEvalKit's build_dataset."""
    import vlmeval.dataset

    vlmeval.dataset.VisChainMT = VisChainMT
    if VisChainMT not in vlmeval.dataset.DATASET_CLASSES:
        vlmeval.dataset.DATASET_CLASSES.append(VisChainMT)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vlmevalkit", required=True, help="VLMEvalKit's repository folder (has run.py)")
    args, rest = parser.parse_known_args()
    run_py = osp.join(args.vlmevalkit, "run.py")
    if not osp.isfile(run_py):
        sys.exit(f"error: --vlmevalkit: no run.py in {args.vlmevalkit}")
    register()
    sys.argv = [run_py, "--data", DATASET, *rest]
    runpy.run_path(run_py, run_name="__main__")


if __name__ == "__main__":
    main()
