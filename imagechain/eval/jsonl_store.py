"""Append-only JSON Lines files that a killed run can resume from.

Every finished item is one line, written and flushed as soon as it is done, so a kill loses at most
the line being written. On reopening, a torn last line (no newline, or not JSON) is cut off the
file before anything is appended; a bad line anywhere else is real damage and an error naming the
file and line. Later lines win over earlier ones with the same key, so a retried item simply
appends its new record.

    store = JsonlStore(out / "predictions.jsonl", key=("variant", "story_id", "model", "prompt_hash"))
    if not store.done(record_key): store.append(record)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

from schemas.durable_files import append_jsonl
from schemas.errors import DataError


def read_jsonl(path: str | Path, repair: bool = False) -> list[dict]:
    """The records of `path` ([] when missing). A torn last line is skipped, and cut off with `repair`."""
    path = Path(path)
    if not path.is_file():
        return []
    data = path.read_bytes()
    *complete, tail = data.split(b"\n")  # every record is written with its newline in one write
    records = []
    for number, line in enumerate(complete, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            raise DataError(f"{path}: line {number} is not JSON") from None
    if tail.strip():
        try:  # JSON whose newline never made it to disk: keep it, give it its newline back
            records.append(json.loads(tail))
            if repair:
                _truncate(path, len(data), b"\n")
        except json.JSONDecodeError:  # the line a kill interrupted
            if repair:
                _truncate(path, len(data) - len(tail))
    return records


def _truncate(path: Path, size: int, suffix: bytes = b"") -> None:
    with open(path, "r+b") as handle:
        handle.truncate(size)
        handle.seek(size)
        handle.write(suffix)


class JsonlStore:
    """A resumable record file; `key` names the fields that identify one item of work."""

    def __init__(self, path: str | Path, key: Iterable[str], accept: Callable[[dict], bool] = lambda r: True):
        self.path = Path(path)
        self.key_fields = tuple(key)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.records: dict[tuple, dict] = {}
        for record in read_jsonl(self.path, repair=True):
            self.records[self.key(record)] = record
        # `accept` says which stored records count as finished (an error record is retried).
        self._accept = accept

    def key(self, record: dict) -> tuple:
        return tuple(json.dumps(record.get(name), sort_keys=True) for name in self.key_fields)

    def done(self, record: dict) -> bool:
        found = self.records.get(self.key(record))
        return found is not None and self._accept(found)

    def get(self, record: dict) -> dict | None:
        return self.records.get(self.key(record))

    def append(self, record: dict) -> None:
        append_jsonl(self.path, [record], ensure_ascii=False, sort_keys=True)
        self.records[self.key(record)] = record
