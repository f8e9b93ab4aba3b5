"""`lmms-eval`: a task folder lmms-eval loads with `--include_path`: YAML, utils.py, data, images.

    OUT/<NAME>.yaml      the task: local JSON data, generate_until, metrics ca / tc / format_error_rate
    OUT/utils.py         doc_to_visual, doc_to_text, doc_to_messages, process_results, the aggregations
    OUT/vischain.jsonl   one document per question (below)
    OUT/images/...

lmms-eval asks one document at a time, so each question is a document that carries its task's
conversation up to it, earlier questions answered with the truth: the protocol with `history=gold`
(`vischain eval --history gold`). Chat models get that conversation as messages (`doc_to_messages`,
ICIR's solved examples as real assistant turns); simple models get `doc_to_visual` (every image in
order) and `doc_to_text` (the turns as text, `<image>` where each image goes, earlier answers as
`ANSWER: <label>` lines). A document's fields: doc_id, kind, task_id, domain, question (its number),
questions (how many its task has), messages (content parts `{type, text, path}`), labels, truth.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import yaml

from vischain.exports.conversation import Conversation, Image, Turn
from vischain.exports.jsonl import write_jsonl

DATA_FILE = "vischain.jsonl"
UTILS_FILE = "utils.py"


def documents(conversation: Conversation) -> list[dict]:
    docs, history = [], []
    questions = conversation.questions
    for turn in conversation.turns:
        history.append({"role": "user", "content": _content(turn)})
        if not turn.example:
            number = len(docs) + 1
            docs.append({"doc_id": f"{conversation.kind}/{conversation.task_id}/{number}",
                         "kind": conversation.kind, "task_id": conversation.task_id, "domain": conversation.domain,
                         "question": number, "questions": len(questions), "messages": list(history),
                         "labels": list(turn.labels), "truth": turn.truth})
        history.append({"role": "assistant", "content": [{"type": "text", "text": turn.answer, "path": None}]})
    return docs


def _content(turn: Turn) -> list[dict]:
    # Every part has the same three keys, so the JSON loader infers one struct for all of them.
    return [{"type": "image", "text": None, "path": part.path} if isinstance(part, Image)
            else {"type": "text", "text": part.text, "path": None} for part in turn.parts]


def task_yaml(task: str) -> str:
    config = {
        "task": task,
        # A relative data_files path is resolved against this YAML's folder by lmms-eval's loader.
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": DATA_FILE}},
        "test_split": "test",
        "output_type": "generate_until",
        "doc_to_target": "truth",
        "generation_kwargs": {"max_new_tokens": 256, "temperature": 0, "do_sample": False},
        "metadata": {"version": 1},
    }
    functions = {"doc_to_visual": "doc_to_visual", "doc_to_text": "doc_to_text",
                 "doc_to_messages": "doc_to_messages", "process_results": "process_results"}
    metrics = [("ca", "aggregate_ca", True), ("tc", "aggregate_tc", True),
               ("format_error_rate", "aggregate_format_errors", False)]
    text = yaml.safe_dump(config, sort_keys=False)
    # `!function` tags name functions in utils.py; safe_dump cannot write tags, so they are appended.
    text += "".join(f"{key}: !function utils.{name}\n" for key, name in functions.items())
    text += "metric_list:\n" + "".join(
        f"  - metric: {metric}\n    aggregation: !function utils.{function}\n"
        f"    higher_is_better: {str(higher).lower()}\n" for metric, function, higher in metrics)
    return text


def task_name(name: str) -> str:
    """lmms-eval task names are identifiers in practice (they become file and column names)."""
    return re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_").lower()


def write(conversations: list[Conversation], out: Path, name: str) -> list[str]:
    task = task_name(name)
    write_jsonl(out / DATA_FILE, [doc for conversation in conversations for doc in documents(conversation)])
    (out / f"{task}.yaml").write_text(task_yaml(task), encoding="utf-8")
    utils = resources.files("vischain.exports.assets").joinpath("lmms_eval_utils.py").read_text(encoding="utf-8")
    (out / UTILS_FILE).write_text(utils, encoding="utf-8")
    (out / "README.md").write_text(README.format(task=task, folder=out.name), encoding="utf-8")
    return [DATA_FILE, f"{task}.yaml", UTILS_FILE, "README.md"]


README = """\
# {task}: VisChain tasks for lmms-eval

A task folder in lmms-eval's layout: `{task}.yaml` (local JSON data, `generate_until`), `utils.py`
(prompts, the VisChainBench answer parsing, the metrics) and `vischain.jsonl` with `images/`.
Each question of each task is one document, carrying its task's conversation up to that question with
the earlier questions answered by the truth (as `vischain eval --history gold`). Metrics:

- `ca`: questions answered right / questions (the last `ANSWER: <label>` in the reply counts);
- `tc`: tasks whose every question is right / tasks;
- `format_error_rate`: replies without a valid `ANSWER: <label>` / questions.

Run it with lmms-eval's own CLI, pointing `--include_path` at this folder:

```bash
python -m lmms_eval --model qwen2_vl --model_args pretrained=Qwen/Qwen2-VL-7B-Instruct \\
    --tasks {task} --include_path {folder} --batch_size 1 --output_path {folder}-results
```

Chat models (those lmms-eval runs with `doc_to_messages`) see the conversation as alternating user and
assistant turns; simple models see it as one text with `<image>` where each image goes.
"""
