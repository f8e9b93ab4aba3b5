"""lmms-eval functions of a VisChain task folder (written by `vischain export --format lmms-eval`).

One document is one question with its task's conversation so far, earlier questions answered with the
truth. Scoring follows the VisChainBench protocol as `vischain eval` applies it: the last
`ANSWER: <label>` in a reply counts; a reply without one, or naming a label the question did not show,
is wrong and a format error.
"""

import os
import re
from collections import defaultdict

from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
IMAGE_MARKER = "<image>"


def _image(path):
    with Image.open(os.path.join(HERE, path)) as image:
        return image.convert("RGB")


def doc_to_visual(doc):
    """Every image of the conversation so far, in order."""
    return [_image(part["path"]) for message in doc["messages"] for part in message["content"]
            if part["type"] == "image"]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    """The conversation as one text: each part on its own line, `<image>` where each image goes."""
    lines = []
    for message in doc["messages"]:
        for part in message["content"]:
            lines.append(IMAGE_MARKER if part["type"] == "image" else part["text"])
    return "\n".join(lines)


def doc_to_messages(doc, lmms_eval_specific_kwargs=None):
    """The conversation as chat messages, images opened, in lmms-eval's ChatMessages shape."""
    messages = []
    for message in doc["messages"]:
        content = [{"type": "image", "url": _image(part["path"])} if part["type"] == "image"
                   else {"type": "text", "text": part["text"]} for part in message["content"]]
        messages.append({"role": message["role"], "content": content})
    return messages


def parse_answer(reply, labels):
    """The last `ANSWER: <label>` in the reply if it names one of `labels`; None is a format error."""
    token = r"\d+" if all(label.isdigit() for label in labels) else r"[A-Za-z]"
    pattern = re.compile(rf"ANSWER\s*:\s*[\[(\"'*]*\s*({token})(?![A-Za-z0-9])", re.IGNORECASE)
    found = pattern.findall(reply or "")
    if not found:
        return None
    label = found[-1].upper().lstrip("0") or "0"
    return label if label in labels else None


def process_results(doc, results):
    reply = results[0] if results else ""
    label = parse_answer(reply, doc["labels"])
    item = {"kind": doc["kind"], "task_id": doc["task_id"], "questions": doc["questions"],
            "correct": label == doc["truth"], "format_error": label is None}
    return {"ca": item, "tc": item, "format_error_rate": item}


def aggregate_ca(items):
    return sum(item["correct"] for item in items) / len(items)


def aggregate_format_errors(items):
    return sum(item["format_error"] for item in items) / len(items)


def aggregate_tc(items):
    """Tasks whose every question is right / tasks; a task with a question missing from the run is not complete."""
    tasks = defaultdict(list)
    for item in items:
        tasks[(item["kind"], item["task_id"])].append(item)
    complete = [len(group) == group[0]["questions"] and all(item["correct"] for item in group)
                for group in tasks.values()]
    return sum(complete) / len(complete)
