"""Files that a killed process never leaves half written: whole-file replaces and JSON Lines appends.

    write_atomically(out / "scores.json", text)      # temporary sibling, fsync, rename
    append_jsonl(out / "answers.jsonl", [line])      # one write, flush, fsync
    cut_torn_tail(out / "answers.jsonl")             # drop a last line a kill cut short
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path


def write_atomically(path: str | Path, data: bytes | str, fsync: bool = True) -> Path:
    """Write `data` to a hidden temporary sibling, fsync it, then rename it over `path`. Safe when
    several writers race to write the same content-addressed file: the last rename wins, whole.

    The rename alone is enough against a killed process; `fsync=False` skips the disk flush for
    files that can be made again (fetched images: the flush costs more than the decode).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")  # unique: writers may race
    with open(temporary, "wb") as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)
        if fsync:
            handle.flush()
            os.fsync(handle.fileno())
    os.replace(temporary, path)
    return path


def append_jsonl(path: str | Path, records: list[dict], **dumps_options) -> None:
    """Append one line per record in a single write, then fsync: a kill loses at most that write."""
    data = "".join(json.dumps(record, **dumps_options) + "\n" for record in records)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def cut_torn_tail(path: str | Path) -> None:
    """Drop a last line without its newline (a write cut off mid-line); complete lines stay."""
    path = Path(path)
    if not path.exists():
        return
    with open(path, "r+b") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return
        handle.seek(size - 1)
        if handle.read(1) == b"\n":  # the usual case: one byte read, whatever the log's size
            return
        handle.seek(0)
        data = handle.read()
        handle.truncate(data.rfind(b"\n") + 1)
