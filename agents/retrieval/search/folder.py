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

import functools
import itertools
import json
import re
from collections.abc import Collection
from pathlib import Path

from agents.retrieval.search.candidate import Candidate
from agents.retrieval.search.settings import SearchSettings
from schemas.licence_grammar import parse_licence
from schemas.licences import LicencePolicy

LICENCE_FILE = "licenses.jsonl"
TEXT_FIELDS = ("licence", "license", "version", "creator", "title", "page_url", "source", "source_url", "attribution")
"""Optional keys of a listing line; each is text or null, anything else makes the line malformed."""


async def search_folder(query: str, count: int, policy: LicencePolicy, settings: SearchSettings,
                        skip: Collection[str] = frozenset()) -> list[Candidate]:
    """The `count` admitted images not in `skip` that match `query` best (file order breaks ties),
    then every image the policy refuses, so the caller can report them. Ranking a 1,000-image folder
    for each of a run's slots is the cost that matters, hence the cached split and
    ranking."""
    if settings.folder is None:
        raise ValueError("folder: SearchSettings.folder is not set")
    version = _version(Path(settings.folder))
    ranked = _ranked(version, policy, frozenset(_words(query)))
    best = itertools.islice((c for c in ranked if c.url not in skip), count)
    return [*best, *_split(version, policy)[1]]


# The caches below are keyed by the listing's version (folder, mtime, size), never by its content:
# hashing a tuple of 1,000 candidates on every lookup would cost what the cache saves.

@functools.lru_cache(maxsize=1024)
def _ranked(version: tuple, policy: LicencePolicy, words: frozenset[str]) -> tuple[Candidate, ...]:
    """Admitted candidates, most query words first; cached, as a run repeats its queries."""
    admitted = _split(version, policy)[0]
    order = sorted(range(len(admitted)), key=lambda i: (-len(words & admitted[i][1]), i))
    return tuple(admitted[i][0] for i in order)


@functools.lru_cache(maxsize=8)
def _split(version: tuple, policy: LicencePolicy) -> tuple[tuple, tuple[Candidate, ...]]:
    """(admitted (candidate, words) pairs, refused candidates) for one listing and one policy."""
    indexed = _read_listing(*version)
    admitted = tuple(item for item in indexed if policy.admits(item[0].licence))
    refused = tuple(item[0] for item in indexed if not policy.admits(item[0].licence))
    return admitted, refused


def read_folder(folder: Path) -> list[Candidate]:
    """Every image line of `folder/licenses.jsonl` as a Candidate; a bad line is a one-line ValueError."""
    return [candidate for candidate, _ in _read_listing(*_version(folder))]


def _version(folder: Path) -> tuple[Path, int, int]:
    listing = folder / LICENCE_FILE
    if not listing.is_file():
        raise ValueError(f"folder: {listing} does not exist")
    stat = listing.stat()
    return folder.resolve(), stat.st_mtime_ns, stat.st_size


@functools.lru_cache(maxsize=8)
def _read_listing(root: Path, mtime_ns: int, size: int) -> tuple[tuple[Candidate, frozenset[str]], ...]:
    """Parsed once per version of the file (a run searches the same folder for every image slot),
    with the words of each title and file name that queries are matched against."""
    listing = root / LICENCE_FILE
    indexed = []
    try:
        text = listing.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{listing}: not UTF-8 ({err.reason} at byte {err.start})") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            candidate = _candidate(root, line, f"{listing}:{number}")
            indexed.append((candidate, frozenset(_words(f"{candidate.title or ''} {Path(candidate.url).stem}"))))
    return tuple(indexed)


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
    for key in TEXT_FIELDS:
        if row.get(key) is not None and not isinstance(row[key], str):
            raise ValueError(f"{where}: {key}: expected text, got {type(row[key]).__name__}")
    try:
        path = (root / name).resolve()
    except (OSError, ValueError):
        raise ValueError(f"{where}: file: {name[:80]!r} is not a usable file name") from None
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
