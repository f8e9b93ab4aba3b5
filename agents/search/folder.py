"""`folder` provider: a local directory of images with a `licenses.jsonl`, for offline runs and tests.

One JSON object a line, one line per image file:

    {"file": "gear.png", "licence": "CC BY 4.0", "creator": "A. Smith",
     "page_url": "https://example.org/gear", "title": "an eight-tooth gear"}

Keys: `file` (required, relative to the folder), `licence` (or `license`; any spelling
`parse_licence` knows), `version`, `creator`, `title`, `page_url` (or `source`: the page the image
came from), `source_url` (the image's own public address), `attribution`. The licence is taken as
stated per image (verified). Every listed image is a candidate, ranked by how many query words its
title and file name contain: a demo folder is small, and its keywords may come from a tiny model.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from agents.licences import LicencePolicy, parse_licence
from agents.search.candidate import Candidate
from agents.search.settings import SearchSettings

LICENCE_FILE = "licenses.jsonl"


async def search_folder(query: str, count: int, policy: LicencePolicy, settings: SearchSettings) -> list[Candidate]:
    """Every image of the folder, best match to `query` first; the caller applies the policy and `count`."""
    if settings.folder is None:
        raise ValueError("folder: SearchSettings.folder is not set")
    candidates = read_folder(Path(settings.folder))
    words = _words(query)
    ranked = sorted(candidates, key=lambda c: -len(words & _words(f"{c.title or ''} {Path(c.url).stem}")))
    return ranked


def read_folder(folder: Path) -> list[Candidate]:
    """Every image line of `folder/licenses.jsonl` as a Candidate; a bad line is a one-line ValueError."""
    listing = folder / LICENCE_FILE
    if not listing.is_file():
        raise ValueError(f"folder: {listing} does not exist")
    root = folder.resolve()
    candidates = []
    for number, line in enumerate(listing.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            candidates.append(_candidate(root, line, f"{listing}:{number}"))
    return candidates


def _candidate(root: Path, line: str, where: str) -> Candidate:
    try:
        row = json.loads(line)
    except ValueError:
        raise ValueError(f"{where}: not a JSON object") from None
    if not isinstance(row, dict):
        raise ValueError(f"{where}: not a JSON object")
    name = row.get("file")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}: file: missing")
    path = (root / name).resolve()
    if not path.is_relative_to(root):
        raise ValueError(f"{where}: file: {name!r} is outside the folder")
    if not path.is_file():
        raise ValueError(f"{where}: file: {name!r} does not exist")
    licence_text = row.get("licence", row.get("license"))
    return Candidate(
        url=path.as_uri(),
        page_url=row.get("page_url") or row.get("source") or None,
        title=row.get("title") or None,
        provider="folder",
        licence=parse_licence(licence_text, row.get("version"), verified=True),
        creator=row.get("creator") or None,
        attribution=row.get("attribution") or None,
        source_url=row.get("source_url") or None,
    )


def _words(text: str) -> set[str]:
    """Lower-case words of 3+ letters: short words ("a", "of") match everything."""
    return {w for w in re.split(r"[^a-z0-9]+", text.lower()) if len(w) >= 3}
