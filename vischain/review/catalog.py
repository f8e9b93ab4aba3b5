"""The run as the review server sees it: its tasks in queue order, verify's evidence, its image files.

Read once when the server starts (a 2,000-task run takes well under a second), so a page costs no
folder walk: the queue order is verify's error-priority list (RUN/verify/priority.jsonl) when it
exists, else the run's own order; each task's domain comes from its task.json. Images are known by
content hash only: `ImageIndex` maps a SHA-256 to a file of the run, and nothing from a request
ever becomes a path.

    catalog = Catalog.load(Path("runs/eng"))
    catalog.entries[0].key, catalog.ranked, catalog.item(entry).task
    catalog.images.path(sha256)                     # a run file, or None
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

from schemas.errors import DataError
from schemas.run_store import RunStore
from schemas.task import TaskItem, detect_kind, read_task_json, task_domain

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


@dataclass(frozen=True)
class ModelAnswer:
    """One verifier model's answer to one question, from priority.jsonl."""

    model: str
    answer: str | None
    """The label it chose; None on a format error or a skip."""
    format_error: bool
    skipped: bool
    reply: str | None
    """Its raw reply, cut to verify's REPLY_CHARS."""
    weight: float


@dataclass(frozen=True)
class Evidence:
    """What the verifier models did with one question."""

    truth: str
    """The truth when verify ran (an edit may have moved it since)."""
    answers: tuple[ModelAnswer, ...]


@dataclass(frozen=True)
class Entry:
    """One task of the queue."""

    kind: str
    task_id: str
    domain: str
    rank: int | None
    """Verify's rank (1 = most suspicious); None when verify has not ranked it."""
    score: float | None
    evidence: dict[int, Evidence] = field(default_factory=dict)
    """Question number -> each verifier model's answer."""

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.task_id)


class ImageIndex:
    """SHA-256 -> a file in the run folder: the only way the server finds an image to send."""

    def __init__(self, root: Path):
        self.root = root
        self._paths: dict[str, Path] = {}
        self._by_file: dict[str, str] = {}
        self._lock = threading.Lock()

    def add(self, relative: str, sha256: str) -> None:
        with self._lock:
            self._paths[sha256] = self.root / relative
            self._by_file[relative] = sha256

    def path(self, sha256: str) -> Path | None:
        return self._paths.get(sha256)

    def key(self, relative: str) -> str:
        """The hash of a run file: provenance's when recorded, else the file's bytes hashed once."""
        known = self._by_file.get(relative)
        if known is None:
            known = hashlib.sha256((self.root / relative).read_bytes()).hexdigest()
            self.add(relative, known)
        return known


@dataclass
class Catalog:
    root: Path
    entries: list[Entry]
    """Queue order: verify's ranks, then tasks verify has not seen, in run order."""
    ranked: bool
    """Whether verify's priority list exists (else the queue shows a banner)."""
    images: ImageIndex
    store: RunStore
    by_key: dict[tuple[str, str], Entry] = field(init=False)

    def __post_init__(self):
        self.by_key = {entry.key: entry for entry in self.entries}

    @classmethod
    def load(cls, root: Path) -> Catalog:
        store = RunStore.open(root)
        refs = store.tasks()
        if not refs:
            raise DataError(f"RUN: {root} has no tasks")
        domains = {}
        for ref in refs:
            try:
                domains[(ref.kind, ref.task_id)] = task_domain(read_task_json(ref.folder)) or "unknown"
            except (OSError, ValueError) as err:
                raise DataError(f"{ref.folder / 'task.json'}: cannot be read: {err}") from None
        priority_file = root / "verify" / "priority.jsonl"
        entries, seen = [], set()
        if priority_file.is_file():
            for number, line in enumerate(priority_file.read_text(encoding="utf-8").splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    entry = _entry(json.loads(line), domains)
                except (ValueError, KeyError, TypeError) as err:
                    raise DataError(f"{priority_file}:{number}: not a priority line: {err}") from None
                if entry is not None and entry.key not in seen:
                    entries.append(entry)
                    seen.add(entry.key)
        entries += [Entry(ref.kind, ref.task_id, domains[(ref.kind, ref.task_id)], None, None)
                    for ref in refs if (ref.kind, ref.task_id) not in seen]
        images = ImageIndex(root)
        for file, line in store.provenance_by_file().items():
            if Path(file).suffix.lower() in IMAGE_SUFFIXES:
                images.add(file, line["sha256"])
        return cls(root, entries, priority_file.is_file(), images, store)

    def entry(self, kind: str, task_id: str) -> Entry | None:
        return self.by_key.get((kind, task_id))

    def item(self, entry: Entry) -> TaskItem:
        """The task as it is on disk now (its current revision)."""
        folder = self.store.task_folder(entry.kind, entry.task_id)
        task = read_task_json(folder)
        if detect_kind(task) != entry.kind:
            raise DataError(f"{folder / 'task.json'}: no longer a {entry.kind} task")
        return TaskItem(entry.kind, entry.task_id, folder, task, entry.domain)

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()


def _entry(line: dict, domains: dict[tuple[str, str], str]) -> Entry | None:
    key = (line["kind"], line["task_id"])
    if key not in domains:  # ranked by an earlier verify, since removed from the run
        return None
    evidence = {e["question"]: Evidence(e["truth"], tuple(_answer(a) for a in e["answers"])) for e in line["evidence"]}
    return Entry(line["kind"], line["task_id"], domains[key], int(line["rank"]), float(line["score"]), evidence)


def _answer(answer: dict) -> ModelAnswer:
    return ModelAnswer(answer["model"], answer["answer"], bool(answer.get("format_error")),
                       bool(answer.get("skipped")), answer.get("reply"), float(answer.get("model_weight", 1.0)))
