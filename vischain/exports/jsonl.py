"""JSON Lines, as every export that names a file `.jsonl` writes it: one JSON object per line."""

from __future__ import annotations

import json
from pathlib import Path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    """One compact JSON object per line, UTF-8, a newline after each (the last included)."""
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path
