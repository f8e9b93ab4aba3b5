"""The run folder: the one place a run's results live on disk.

    runs/<name>/run.json            config, package versions, seed, counts
    runs/<name>/tasks/<kind>/<id>/  task.json (+ plan.json) + images, written atomically
    runs/<name>/provenance.jsonl    one line per image, appended durably
    runs/<name>/failures.jsonl      one line per task that could not be built
    runs/<name>/state.sqlite        LangGraph checkpoints (one thread per task)
    runs/<name>/calls.sqlite        model-call cache (a separate file: two writers on one file lock)
    runs/<name>/claims.sqlite       which image slot holds each URL and kept image (schemas/run_claims.py)

A crash never leaves half a task: a task folder is built in a hidden sibling, fsynced, then renamed
into place. JSONL appends are flushed and fsynced per line; a torn last line (power loss mid-write)
is cut off the next time the run is opened, so earlier lines are never lost.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import platform
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from schemas.durable_files import append_jsonl, cut_torn_tail, write_atomically
from schemas.schema_check import require
from schemas.task import TASK_KINDS

VERSIONED_PACKAGES = ("vischain", "torch", "transformers", "langgraph", "diffusers", "peft", "datasets", "httpx")


@dataclass(frozen=True)
class TaskRef:
    kind: str
    task_id: str
    folder: Path


class RunStore:
    def __init__(self, root: Path):
        self.root = root
        self._append_lock = threading.RLock()
        self._lock_factory = None  # None: a lock on the log file itself; see use_lock
        self._provenance: dict[str, dict] = {}  # file -> last line, as far as read
        self._provenance_offset = 0  # bytes of provenance.jsonl read so far

    # ---- create / open ---------------------------------------------------------------------------

    @classmethod
    def create(cls, root: str | Path, config: dict, seed: int | None = None, status: str = "incomplete") -> "RunStore":
        """A new run folder. It stays `incomplete` (and fails validation) until the command that
        makes it calls `set_status("complete")`: a killed generate or merge never looks finished."""
        root = Path(root)
        if (root / "run.json").exists():
            raise FileExistsError(f"{root}: already a run folder")
        (root / "tasks").mkdir(parents=True, exist_ok=True)
        store = cls(root)
        run = {"name": root.name, "run_id": uuid.uuid4().hex, "created": _now(), "status": status,
               "config": config, "seed": seed, "versions": package_versions(), "counts": {}}
        write_atomically(root / "run.json", _json_text(run))
        store.refresh_counts()
        return store

    @classmethod
    def open(cls, root: str | Path) -> "RunStore":
        root = Path(root)
        if not (root / "run.json").is_file():
            raise FileNotFoundError(f"{root}: not a run folder (no run.json)")
        store = cls(root)
        for name in ("provenance.jsonl", "failures.jsonl"):
            cut_torn_tail(root / name)
        return store

    @property
    def run(self) -> dict:
        return json.loads((self.root / "run.json").read_text())

    @property
    def state_db(self) -> Path:
        return self.root / "state.sqlite"

    @property
    def calls_db(self) -> Path:
        return self.root / "calls.sqlite"

    @property
    def claims_db(self) -> Path:
        return self.root / "claims.sqlite"

    # ---- tasks -----------------------------------------------------------------------------------

    def task_folder(self, kind: str, task_id: str) -> Path:
        if kind not in TASK_KINDS:
            raise ValueError(f"kind: {kind!r} is not one of {', '.join(TASK_KINDS)}")
        return self.root / "tasks" / kind / task_id

    def has_task(self, kind: str, task_id: str) -> bool:
        return (self.task_folder(kind, task_id) / "task.json").is_file()

    def tasks(self, kind: str | None = None) -> list[TaskRef]:
        kinds = [kind] if kind else list(TASK_KINDS)
        refs = []
        for k in kinds:
            base = self.root / "tasks" / k
            if base.is_dir():
                refs += [TaskRef(k, d.name, d) for d in sorted(base.iterdir())
                         if not d.name.startswith(".") and (d / "task.json").is_file()]
        return refs

    def write_task(self, kind: str, task_id: str, task: dict, images: dict[str, str | Path],
                   extra_json: dict[str, dict] | None = None) -> Path:
        """Write task.json, extra JSON files and images (name in task folder -> source file), all or nothing."""
        require(kind, task, f"{kind}/{task_id}/task.json")
        target = self.task_folder(kind, task_id)
        if target.exists():
            raise FileExistsError(f"{target}: task already written")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{task_id}-", dir=target.parent))
        try:
            for name, source in images.items():
                shutil.copyfile(source, staging / name)
                _fsync_file(staging / name)
            for name, value in {**(extra_json or {}), "task.json": task}.items():
                _write_json(staging / name, value)
            _fsync_dir(staging)
            os.rename(staging, target)
            _fsync_dir(target.parent)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return target

    def remove_stale_staging(self, task_id: str | None = None) -> int:
        """Delete hidden half-written task folders a killed process left behind: every one, or one
        task's (a worker that takes over a task holds its lease, so nobody else is writing it)."""
        pattern = f"*/.{task_id}-*" if task_id else "*/.*"
        stale = [d for d in (self.root / "tasks").glob(pattern) if d.is_dir()]
        for folder in stale:
            shutil.rmtree(folder, ignore_errors=True)
        return len(stale)

    # ---- JSONL logs ------------------------------------------------------------------------------
    # Several processes may work on one run. Appends happen under a lock that spans processes (a
    # lock on the log file itself; PostgreSQL's advisory lock when the run's state is there:
    # `use_lock`), after reading what others appended since this process last looked, so a line is
    # never written twice.

    def use_lock(self, lock) -> None:
        """Serialise appends with `lock()` (a context manager factory) instead of a lock on the log file."""
        self._lock_factory = lock

    def _locked(self, log: Path):
        return self._lock_factory() if self._lock_factory else _file_lock(log)

    def append_provenance(self, lines: list[dict]) -> list[dict]:
        """Append the lines the log does not hold yet (by content); returns those appended."""
        for line in lines:
            require("provenance", line, "provenance.jsonl")
        with self._append_lock, self._locked(self.root / "provenance.jsonl"):
            known = self._follow_provenance()
            new = [line for line in lines if known.get(line["file"]) != line]
            if new:
                cut_torn_tail(self.root / "provenance.jsonl")  # a line a killed process cut short
                append_jsonl(self.root / "provenance.jsonl", new, sort_keys=True)
                self._follow_provenance()
        return new

    def append_failure(self, line: dict) -> bool:
        """Record that a task failed, once per task; False when it was recorded before."""
        line = {"time": _now(), **line}
        require("failure", line, "failures.jsonl")
        with self._append_lock, self._locked(self.root / "failures.jsonl"):
            if any(old.get("task_id") == line["task_id"] for old in self.read_jsonl("failures.jsonl")):
                return False
            cut_torn_tail(self.root / "failures.jsonl")
            append_jsonl(self.root / "failures.jsonl", [line], sort_keys=True)
        return True

    def read_jsonl(self, name: str) -> list[dict]:
        path = self.root / name
        if not path.exists():
            return []
        text = path.read_text()
        whole = text[:text.rfind("\n") + 1]  # a last line still being written is not read yet
        return [json.loads(line) for line in whole.splitlines() if line.strip()]

    def provenance_by_file(self) -> dict[str, dict]:
        """file -> its last provenance line, including what other processes appended since. Do not mutate."""
        with self._append_lock:
            return self._follow_provenance()

    def _follow_provenance(self) -> dict[str, dict]:
        """Read the log's new complete lines since the last read (the log only grows)."""
        path = self.root / "provenance.jsonl"
        if not path.exists():
            return self._provenance
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            if size < self._provenance_offset:  # rewritten (a test, a repair): read it again
                self._provenance, self._provenance_offset = {}, 0
            handle.seek(self._provenance_offset)
            data = handle.read(size - self._provenance_offset)
        whole = data[:data.rfind(b"\n") + 1]
        for raw in whole.decode("utf-8").splitlines():
            if raw.strip():
                line = json.loads(raw)
                self._provenance[line["file"]] = line
        self._provenance_offset += len(whole)
        return self._provenance

    # ---- run.json --------------------------------------------------------------------------------

    def refresh_counts(self) -> dict:
        counts = {kind: len(self.tasks(kind)) for kind in TASK_KINDS}
        counts["failures"] = len(self.read_jsonl("failures.jsonl"))
        counts["images"] = len(self.provenance_by_file())  # files, not lines: a resumed task may repeat one
        self.update_run(counts=counts)
        return counts

    @property
    def status(self) -> str:
        """incomplete or complete (runs made before the field existed read as complete)."""
        return self.run.get("status", "complete")

    def set_status(self, status: str) -> None:
        if status not in ("incomplete", "complete"):
            raise ValueError(f"status: {status!r} is not incomplete or complete")
        self.update_run(status=status)

    def update_run(self, **fields) -> None:
        with self._append_lock:
            write_atomically(self.root / "run.json", _json_text({**self.run, **fields}))


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


@contextlib.contextmanager
def _file_lock(path: Path):
    """An exclusive lock on `path` (created if missing) across this machine's processes, released
    when the process dies."""
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _json_text(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def _write_json(path: Path, value) -> None:
    """Inside a staging folder, which is fsynced and renamed as a whole."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(_json_text(value))
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
