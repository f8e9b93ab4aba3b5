"""Images a reviewer may swap into a task: fetched candidates that no task uses.

Generate keeps every image it fetched in the run's pool, RUN/images/<sha256>.<ext>, whether the
validator took it or not. A pool image no task uses is a candidate for any slot; the candidates of
the very slot being edited come first. That link, and the provenance line a retrieved image needs
before it may enter a task, are read from the generate checkpoints (RUN/state.sqlite): each slot's
fetched images (`kept`, with their provenance) are in the task's thread. A pool image whose line is
in neither provenance.jsonl nor the checkpoints cannot be swapped in, and says why.

    for candidate in swap_candidates(catalog, "itmr", "itmr-0001", "q1_b.png"):
        candidate.sha256, candidate.same_slot, candidate.refusal
"""

from __future__ import annotations

import functools
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from schemas.provenance import ProvenanceLine
from schemas.task import read_task_json, task_images
from vischain.review.catalog import IMAGE_SUFFIXES, Catalog

POOL = "images"
"""The run-relative pool folder (graphs/generate/slots.py POOL)."""
POOL_NAME = re.compile(r"^[0-9a-f]{64}$")
SHOWN = 24
"""Candidates listed per image: the same slot's first, then other unused pool images."""


@dataclass(frozen=True)
class SwapCandidate:
    sha256: str
    file: str
    """Run-relative pool path, images/<sha256>.<ext>."""
    same_slot: bool
    """Fetched for the slot being edited (from the generate checkpoints)."""
    provenance: ProvenanceLine | None
    """Its line: from provenance.jsonl, else from the checkpoints; None when neither has one."""

    @property
    def refusal(self) -> str | None:
        if self.provenance is None:
            return (f"{self.file} has no provenance line (neither provenance.jsonl nor the generate checkpoints "
                    "record where it came from or its licence), so it may not go into a task")
        return None


def slot_key(image_name: str) -> str:
    """The slot of a task image: its file stem without a review revision suffix (q1_b.r3.jpg -> q1_b)."""
    return image_name.split(".", 1)[0]


def swap_candidates(catalog: Catalog, kind: str, task_id: str, image_name: str) -> list[SwapCandidate]:
    """Unused pool images for the slot of `image_name`: its own fetched candidates first, at most SHOWN."""
    root = catalog.root
    provenance = dict(catalog.store.provenance_by_file())  # a copy: an edit in another thread may append
    by_sha = {line["sha256"]: line for line in provenance.values()}  # a line describes bytes, whatever the file
    used = used_images(catalog)
    state_db = root / "state.sqlite"
    fetched = slot_history(state_db, task_id, state_db.stat().st_mtime_ns) if state_db.is_file() else {}
    own = fetched.get(slot_key(image_name), {})
    pool = {path.stem: path for path in sorted((root / POOL).iterdir())
            if path.suffix.lower() in IMAGE_SUFFIXES and POOL_NAME.match(path.stem)} if (root / POOL).is_dir() else {}
    candidates = []
    for sha256 in [*own, *(s for s in pool if s not in own)]:
        if sha256 in used or sha256 not in pool:
            continue
        file = f"{POOL}/{pool[sha256].name}"
        line = provenance.get(file) or own.get(sha256) or _any_slot(fetched, sha256) or by_sha.get(sha256)
        candidates.append(SwapCandidate(sha256, file, sha256 in own, line))
        catalog.images.add(file, sha256)  # so the page can show it
        if len(candidates) == SHOWN:
            break
    return candidates


def used_images(catalog: Catalog) -> set[str]:
    """SHA-256 of every image the tasks' current task.json files name (read now: edits change them)."""
    provenance = dict(catalog.store.provenance_by_file())
    return {provenance[file]["sha256"] if file in provenance else catalog.images.key(file)
            for file in task_image_files(catalog)}


def task_image_files(catalog: Catalog) -> list[str]:
    """Run-relative path of every image a task's current task.json names."""
    return [f"tasks/{entry.kind}/{entry.task_id}/{name}" for entry in catalog.entries
            for _, name in task_images(read_task_json(catalog.store.task_folder(entry.kind, entry.task_id)))]


def task_image_lines(catalog: Catalog) -> dict[str, ProvenanceLine]:
    """file -> provenance line of every image the tasks name now (the run-wide rules are about these)."""
    provenance = dict(catalog.store.provenance_by_file())
    return {file: provenance[file] for file in task_image_files(catalog) if file in provenance}


def _any_slot(fetched: dict[str, dict[str, ProvenanceLine]], sha256: str) -> ProvenanceLine | None:
    return next((lines[sha256] for lines in fetched.values() if sha256 in lines), None)


@functools.lru_cache(maxsize=256)
def slot_history(state_db: Path, task_id: str, mtime_ns: int) -> dict[str, dict[str, ProvenanceLine]]:
    """slot key -> {sha256: provenance line} of every image the slot fetched, from the task's
    checkpoint thread. Read-only; an unreadable file gives {} (the link is a convenience, not a rule).
    Cached per file version (`mtime_ns`): a task's thread does not change while nobody generates."""
    try:
        db = sqlite3.connect(f"file:{state_db}?mode=ro", uri=True)
        try:
            rows = db.execute("SELECT type, checkpoint FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ''",
                              (task_id,)).fetchall()
        finally:
            db.close()
    except sqlite3.Error:
        return {}
    serde = JsonPlusSerializer()  # LangGraph's own format for checkpoints (no pickle)
    history: dict[str, dict[str, ProvenanceLine]] = {}
    for type_, blob in rows:
        try:
            slots = serde.loads_typed((type_, blob)).get("channel_values", {}).get("slots") or []
        except (ValueError, TypeError, NotImplementedError):
            continue
        for slot in slots:
            lines = history.setdefault(slot["key"], {})
            for image in [*slot.get("kept", []), *([slot["image"]] if slot.get("image") else [])]:
                if image.get("provenance") and not image["provenance"].get("synthetic"):
                    lines[image["sha256"]] = image["provenance"]
    return history
