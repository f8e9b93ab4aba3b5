"""The run's shared state: which image slot holds each candidate URL and each kept image.

A benchmark may use a retrieved image once. Every slot of every task claims the URLs it will fetch
and the images it keeps, in `claims.sqlite` in the run folder, each claim committed in its own
transaction before the step that made it returns. A resumed run (or another process working on
the same run) sees every claim ever made, so no image can land in two slots, whatever was killed
when. A claim names its owner, `<task_id>/<slot key>`: a step that runs again after a kill claims
the same things as the same owner, and gets them back.

    claims = RunClaims(run / "claims.sqlite", near_duplicate_bits=4)
    granted = claims.claim_urls("itmr-0001/q1_a", ["https://...", ...])   # those now held by this owner
    refusal = claims.claim_image("itmr-0001/q1_a", sha256, phash)        # None, or why not (a duplicate)

An image is a duplicate of another when their SHA-256 match, or their 64-bit pHashes are within
`near_duplicate_bits` bits. Near-duplicate lookups go through pHash bands stored with each image
(the pigeonhole index of schemas/phash_index.py, kept in SQLite so that every process shares it).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Collection, Iterator
from pathlib import Path

from schemas.phash_index import MAX_INDEXED_BITS, band_masks

NEAR_DUPLICATE_BITS = 4
"""The default pHash distance, in bits of 64, within which two images count as one (the fetcher's
`near_duplicate_bits`; a profile's `search.near_duplicate_bits` changes it for a run)."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS url_claims (
    url TEXT PRIMARY KEY,
    owner TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS image_claims (
    sha256 TEXT PRIMARY KEY,
    phash INTEGER NOT NULL,
    owner TEXT NOT NULL,
    seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS image_bands (
    band INTEGER NOT NULL,
    value INTEGER NOT NULL,
    sha256 TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS image_bands_lookup ON image_bands (band, value);
"""


class RunClaims:
    """Claims of one run, safe to share between threads (one connection under a lock) and between
    processes (SQLite serialises writers; each claim is one IMMEDIATE transaction)."""

    def __init__(self, path: str | Path, near_duplicate_bits: int = NEAR_DUPLICATE_BITS):
        self.path = Path(path)
        self.near_duplicate_bits = near_duplicate_bits
        bands = near_duplicate_bits + 1 if 0 <= near_duplicate_bits <= MAX_INDEXED_BITS else 0
        self._bands = band_masks(bands)
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a killed process loses nothing committed; only a power cut can drop the
        # last claims, and then the steps that made them run again from the last checkpoint.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()
        # url -> owner for every claim seen so far: lets searches skip others' URLs without a query
        # per candidate. It only ever lags the table; claim_urls asks the table itself.
        self._urls: dict[str, str] = dict(self._db.execute("SELECT url, owner FROM url_claims"))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ---- URLs ------------------------------------------------------------------------------------

    def claim_urls(self, owner: str, urls: list[str]) -> list[str]:
        """The URLs, in order, that `owner` now holds: new ones, and ones it claimed before."""
        if not urls:
            return []
        with self._lock, self._transaction():
            self._db.executemany("INSERT OR IGNORE INTO url_claims (url, owner) VALUES (?, ?)",
                                 [(url, owner) for url in urls])
            marks = ",".join("?" * len(urls))
            holders = dict(self._db.execute(f"SELECT url, owner FROM url_claims WHERE url IN ({marks})", urls))
            self._urls.update(holders)
        return [url for url in urls if holders.get(url) == owner]

    def taken_by_others(self, owner: str, also: Collection[str] = ()) -> Collection[str]:
        """The URLs other owners hold, as far as this process has seen, and `also`: what a search skips."""
        return _OthersUrls(self._urls, owner, also)

    # ---- images ----------------------------------------------------------------------------------

    def claim_image(self, owner: str, sha256: str, phash: str) -> str | None:
        """None when `owner` now holds this image; else why not ("duplicate of <sha256> ...")."""
        bits = int(phash, 16)
        with self._lock, self._transaction():
            row = self._db.execute("SELECT owner FROM image_claims WHERE sha256 = ?", (sha256,)).fetchone()
            if row is not None:
                return None if row[0] == owner else f"duplicate of {sha256} (held by {row[0]})"
            near = self._nearest_other(bits, owner)
            if near is not None:
                return f"duplicate of {near[0]} (pHash distance {near[1]}, held by {near[2]})"
            seq = self._db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM image_claims").fetchone()[0]
            self._db.execute("INSERT INTO image_claims (sha256, phash, owner, seq) VALUES (?, ?, ?, ?)",
                             (sha256, _signed(bits), owner, seq))
            self._db.executemany("INSERT INTO image_bands (band, value, sha256) VALUES (?, ?, ?)",
                                 [(band, (bits >> shift) & mask, sha256)
                                  for band, (shift, mask) in enumerate(self._bands)])
        return None

    def _nearest_other(self, bits: int, owner: str) -> tuple[str, int, str] | None:
        """The earliest claimed image of another owner within the distance: (sha256, distance, owner)."""
        if self.near_duplicate_bits < 0:
            return None
        if self._bands:
            clauses = " OR ".join("(b.band = ? AND b.value = ?)" for _ in self._bands)
            values = [v for band, (shift, mask) in enumerate(self._bands) for v in (band, (bits >> shift) & mask)]
            rows = self._db.execute(
                f"SELECT DISTINCT c.sha256, c.phash, c.owner, c.seq FROM image_bands b "
                f"JOIN image_claims c ON c.sha256 = b.sha256 WHERE {clauses} ORDER BY c.seq", values)
        else:
            rows = self._db.execute("SELECT sha256, phash, owner, seq FROM image_claims ORDER BY seq")
        for sha256, other, holder, _ in rows:
            distance = (bits ^ _unsigned(other)).bit_count()
            if distance <= self.near_duplicate_bits and holder != owner:
                return sha256, distance, holder
        return None

    def _transaction(self):
        return _Immediate(self._db)


class _Immediate:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error): the write lock is taken before the reads, so a
    check and the insert that depends on it cannot interleave with another process's."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind, value, traceback):
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")


class _OthersUrls(Collection[str]):
    def __init__(self, urls: dict[str, str], owner: str, also: Collection[str]):
        self._urls, self._owner, self._also = urls, owner, also

    def __contains__(self, url: object) -> bool:
        holder = self._urls.get(url)  # type: ignore[arg-type]
        return (holder is not None and holder != self._owner) or url in self._also

    def __iter__(self) -> Iterator[str]:
        others = (url for url, holder in list(self._urls.items()) if holder != self._owner)
        return iter({*others, *self._also})

    def __len__(self) -> int:
        return len(self._urls) + len(self._also)  # an upper bound is what providers need: how far to read


def _signed(bits: int) -> int:
    """SQLite integers are signed 64-bit."""
    return bits - (1 << 64) if bits >= 1 << 63 else bits


def _unsigned(value: int) -> int:
    return value + (1 << 64) if value < 0 else value
