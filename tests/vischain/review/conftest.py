"""Runs under review: a small run with verify's priority list and unused pool images, and people to sign in.

    run = review_run(tmp_path / "run")          # 3 tasks per kind, verified, 2 unused pool images
    run.pool_with_line, run.pool_without_line    # SHA-256 of the pool images with and without provenance
"""

from __future__ import annotations

import hashlib
import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import imagehash
from PIL import Image, ImageDraw
from typer.testing import CliRunner

from schemas.task import load_tasks
from tests.oracle_runs import Oracle, make_run
from vischain.cli import app

runner = CliRunner()
WEAK_MISSES = ("itmr-0002", 1)
"""The question the weak verifier model gets wrong, so verify ranks itmr-0002 first."""


@dataclass(frozen=True)
class ReviewRun:
    path: Path
    pool_with_line: str
    """An unused pool image whose provenance line is in provenance.jsonl: it may be swapped in."""
    pool_without_line: str
    """An unused pool image nothing records the source of: a swap must be refused."""


def review_run(root: Path, per_kind: int = 3) -> ReviewRun:
    run = make_run(root, per_kind)
    policy = lambda model, task, question: "wrong" if model == "weak" and (task, question) == WEAK_MISSES else "right"
    with Oracle(load_tasks(run), root.parent / f"{root.name}-labels", policy) as oracle:
        url = oracle.server.base_url
        args = ["verify", str(run), "--model", f"openai:good@{url}", "--model", f"openai:weak@{url}"]
        # In a thread of its own: verify runs an event loop, and Playwright's sync API holds one in this thread.
        with ThreadPoolExecutor(1) as pool:
            result = pool.submit(runner.invoke, app, args, env={"COLUMNS": "200"}).result()
    assert result.exit_code == 0, result.output
    with_line = pool_image(run, (30, 120, 200), "pool A", provenance=True)
    without_line = pool_image(run, (200, 160, 20), "pool B", provenance=False)
    return ReviewRun(run, with_line, without_line)


def pool_image(run: Path, colour: tuple[int, int, int], text: str, provenance: bool) -> str:
    """An image in RUN/images/ as generate's fetcher leaves one, with (or without) a CC0 provenance line."""
    image = Image.new("RGB", (96, 96), colour)
    draw = ImageDraw.Draw(image)
    for i in range(0, 96, 12):  # stripes, so its pHash is far from every drawn task image
        draw.line([(i, 0), (96 - i, 96)], fill=(255 - colour[0], 255 - colour[1], 255 - colour[2]), width=3)
    draw.text((8, 40), text, fill=(255, 255, 255))
    (run / "images").mkdir(exist_ok=True)
    staging = run / "images" / "new.png"
    image.save(staging)
    sha256 = hashlib.sha256(staging.read_bytes()).hexdigest()
    staging.rename(run / "images" / f"{sha256}.png")
    if provenance:
        line = {"file": f"images/{sha256}.png", "sha256": sha256, "phash": str(imagehash.phash(image)),
                "provider": "drawn", "source_url": None, "page_url": None, "creator": "vischain tests",
                "attribution": "Drawn by vischain tests (CC0)", "synthetic": False, "generator": None,
                "validator": None, "licence": {"id": "cc0", "version": "1.0", "verified": True, "filter": None,
                                               "url": "https://creativecommons.org/publicdomain/zero/1.0/"}}
        with open(run / "provenance.jsonl", "a") as handle:
            handle.write(json.dumps(line, sort_keys=True) + "\n")
    return sha256


def sign_in_link(run: Path, name: str, role: str, base_url: str) -> str:
    """The link `vischain review add-reviewer` prints."""
    result = runner.invoke(app, ["review", "add-reviewer", str(run), name, "--role", role, "--url", base_url])
    assert result.exit_code == 0, result.output
    return re.search(r"(http://\S+/login\?token=\S+)", result.output).group(1)


def priority_order(run: Path) -> list[tuple[str, str]]:
    lines = (run / "verify" / "priority.jsonl").read_text().splitlines()
    return [(entry["kind"], entry["task_id"]) for entry in map(json.loads, lines)]
