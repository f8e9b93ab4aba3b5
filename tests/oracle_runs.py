"""Run folders and a scripted model that answers benchmark questions, shared by eval/verify tests.

    root = make_run(tmp_path / "run", per_kind=3)
    with Oracle(load_tasks(root), labels_dir, policy=lambda model, task, q: "right") as oracle:
        ... OpenAIBackend("m", oracle.server.url) ...
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import shutil
from pathlib import Path

import imagehash
from PIL import Image, ImageDraw

from agents.protocol.labels import labelled_image
from agents.protocol.turns import task_script
from benchmark_data import EXAMPLE_RUN
from schemas.task import TaskItem
from tests.servers import FaultyEndpoint, completion

EXAMPLE = EXAMPLE_RUN
KINDS = ("itmr", "icir", "iomr")


def make_run(root: Path, per_kind: int = 1) -> Path:
    """The example run copied to `root`, each task duplicated to `per_kind` tasks (kind-0001..).

    Every copy's images get blocks painted over them, placed by the copy's number, so no two tasks
    share an image (a run's rule, and the Oracle tells questions apart by their images), with a
    provenance line (new hashes) for each new file.
    """
    shutil.copytree(EXAMPLE, root)
    template = {line["file"]: line for line in map(json.loads, (root / "provenance.jsonl").read_text().splitlines())}
    new_lines = []
    for kind in KINDS:
        source = root / "tasks" / kind / f"{kind}-0001"
        for n in range(2, per_kind + 1):
            target = source.with_name(f"{kind}-{n:04d}")
            shutil.copytree(source, target)
            for image in sorted(target.glob("*.png")):
                with Image.open(image) as picture:
                    picture = marked(picture.convert("RGB"), f"{n}/{image.name}")
                picture.save(image)
                line = dict(template[f"tasks/{kind}/{kind}-0001/{image.name}"])
                line["file"] = f"tasks/{kind}/{target.name}/{image.name}"
                line["sha256"] = hashlib.sha256(image.read_bytes()).hexdigest()
                line["phash"] = str(imagehash.phash(picture))
                new_lines.append(line)
    with open(root / "provenance.jsonl", "a") as handle:
        handle.writelines(json.dumps(line) + "\n" for line in new_lines)
    return root


def marked(picture: Image.Image, key: str) -> Image.Image:
    """Blocks of colour placed by `key` on a copy's image: enough to move its pHash past the
    near-duplicate distance, so the copy counts as another image."""
    rng = random.Random(key)
    draw = ImageDraw.Draw(picture)
    w, h = picture.size
    for _ in range(3):
        x, y = rng.randrange(w // 2), rng.randrange(h // 2)
        draw.rectangle([x, y, x + w // 3, y + h // 3], fill=tuple(rng.randrange(256) for _ in range(3)))
    return picture


class Oracle:
    """Answers each question by recognising its labelled candidates (bytes) in the last user turn.

    policy(model, task_id, question) -> "right" | "chatty" (right, with text around) | "wrong" |
    "format" (right label, no ANSWER:). The truths are read when the Oracle is built, so corrupting
    a task.json afterwards leaves the Oracle answering the original truth.
    """

    def __init__(self, tasks: list[TaskItem], labels_dir: Path, policy=lambda model, task, q: "right", latency=0.0):
        self.policy = policy
        self.questions: dict[tuple[str, ...], tuple[str, int, str, str]] = {}
        for item in tasks:
            for q in task_script(item).questions:
                key = tuple(labelled_bytes_b64(labelled_image(src, label, labels_dir)) for label, src in q.choices)
                wrong = next(label for label, _ in q.choices if label != q.truth)
                self.questions[key] = (item.task_id, q.number, q.truth, wrong)
        self.bodies: list[dict] = []
        self.server = FaultyEndpoint(self.answer, latency=latency)

    def answer(self, body: dict) -> dict:
        self.bodies.append(body)
        last_user = [m for m in body["messages"] if m["role"] == "user"][-1]
        images = [p["image_url"]["url"].split(",", 1)[1] for p in last_user["content"] if p["type"] == "image_url"]
        for k in range(2, len(images) + 1):
            if tuple(images[-k:]) in self.questions:
                task_id, number, truth, wrong = self.questions[tuple(images[-k:])]
                mode = self.policy(body["model"], task_id, number)
                return completion({"right": f"ANSWER: {truth}", "wrong": f"ANSWER: {wrong}",
                                   "chatty": f"The second look settles it.\nANSWER: [{truth}]\nDone.",
                                   "format": f"I would pick {truth}."}[mode])
        return completion("I do not know these images.")

    def __enter__(self):
        self.server.__enter__()
        return self

    def __exit__(self, *exc):
        self.server.__exit__(*exc)


def labelled_bytes_b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")
