"""The run's shared state: which image slot holds each candidate URL and each kept image.

A benchmark may use a retrieved image once. Every slot of every task claims the URLs it will fetch
and the images it keeps in the run's database (`claims.sqlite` in the run folder, or the run's
schema in PostgreSQL: schemas/run_db.py), each claim committed in its own transaction before the
step that made it returns. A resumed run (or another process working on
the same run) sees every claim ever made, so no image can land in two slots, whatever was killed
when. A claim names its owner, `<task_id>/<slot key>`: a step that runs again after a kill claims
the same things as the same owner, and gets them back.

    claims = RunClaims(open_run_db(None, run / "claims.sqlite"), near_duplicate_bits=4)
    granted = claims.claim_urls("itmr-0001/q1_a", ["https://...", ...])   # those now held by this owner
    refusal = claims.claim_image("itmr-0001/q1_a", sha256, phash)        # None, or why not (a duplicate)

An image is a duplicate of another when their SHA-256 match, or their 64-bit pHashes are within
`near_duplicate_bits` bits. Near-duplicate lookups go through pHash bands stored with each image
(the pigeonhole index of schemas/phash_index.py, kept in SQLite so that every process shares it).
"""

from __future__ import annotations

import threading
from collections.abc import Collection

from schemas.phash_index import MAX_INDEXED_BITS, band_masks
from schemas.run_db import RunDB, SqliteRunDB

NEAR_DUPLICATE_BITS = 4
"""The default pHash distance, in bits of 64, within which two images count as one (the fetcher's
`near_duplicate_bits`; a profile's `search.near_duplicate_bits` changes it for a run)."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS url_claims (
    url TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    n BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS url_claims_order ON url_claims (n);
CREATE TABLE IF NOT EXISTS image_claims (
    sha256 TEXT PRIMARY KEY,
    phash BIGINT NOT NULL,
    owner TEXT NOT NULL,
    seq BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS image_bands (
    band INTEGER NOT NULL,
    value BIGINT NOT NULL,
    sha256 TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS image_bands_lookup ON image_bands (band, value);
"""


class RunClaims:
    """Claims of one run, safe to share between threads and between processes: each claim is one
    transaction holding the database's write lock (schemas/run_db.py)."""

    def __init__(self, db: RunDB | str, near_duplicate_bits: int = NEAR_DUPLICATE_BITS):
        self.db = SqliteRunDB(db) if isinstance(db, str) else db  # a path: SQLite (":memory:" for tests)
        self.near_duplicate_bits = near_duplicate_bits
        bands = near_duplicate_bits + 1 if 0 <= near_duplicate_bits <= MAX_INDEXED_BITS else 0
        self._bands = band_masks(bands)
        self.db.executescript(SCHEMA)
        self._lock = threading.Lock()
        # url -> owner for every claim seen so far: lets searches skip claimed URLs without a query per
        # candidate. Each claim brings in every claim made since (by number), so it lags the table
        # only by what other processes claimed since this one last claimed.
        self._urls: dict[str, str] = {}
        self._seen = 0
        self._catch_up()

    def close(self) -> None:
        self.db.close()

    def claim_task_images(self, provenance: dict[str, dict]) -> None:
        """A run made before claims existed: claim its task images, each for the slot whose file it is,
        so nothing already in a task can be fetched again."""
        if self.db.query("SELECT COUNT(*) FROM image_claims")[0][0]:
            return
        for file, line in sorted(provenance.items()):
            parts = file.split("/")
            if len(parts) == 4 and parts[0] == "tasks" and not line.get("synthetic"):
                self.claim_image(f"{parts[2]}/{parts[3].rsplit('.', 1)[0]}", line["sha256"], line["phash"])

    # ---- URLs ------------------------------------------------------------------------------------

    def claim_urls(self, owner: str, urls: list[str]) -> list[str]:
        """The URLs, in order, that `owner` now holds: new ones, and ones it claimed before."""
        return self.claim_url_batch([(owner, urls)])[0]

    def claim_url_batch(self, requests: list[tuple[str, list[str]]]) -> list[list[str]]:
        """claim_urls for several owners in one transaction (earlier requests win a URL asked twice)."""
        rows = [(url, owner) for owner, urls in requests for url in urls]
        if not rows:
            return [[] for _ in requests]

        def claim() -> None:
            start = self.db.query("SELECT COALESCE(MAX(n), 0) FROM url_claims")[0][0]
            self.db.executemany("INSERT INTO url_claims (url, owner, n) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                                [(url, owner, start + i) for i, (url, owner) in enumerate(rows, 1)])
            self._catch_up()

        with self._lock:
            self.db.atomically(claim)
            return [[url for url in urls if self._urls.get(url) == owner] for owner, urls in requests]

    def _catch_up(self) -> None:
        """Read the claims made since the last look (in this process or any other)."""
        for url, holder, n in self.db.query("SELECT url, owner, n FROM url_claims WHERE n > ? ORDER BY n",
                                            (self._seen,)):
            self._urls[url] = holder
            self._seen = max(self._seen, n)

    def claimed_urls(self) -> Collection[str]:
        """Every URL claimed so far, as far as this process has seen: what a search skips. A live view
        (a dict's keys: membership at C speed, since a search may pass over thousands of URLs).

        A slot's own claims are skipped too: after a kill, a replayed search takes other candidates
        than it took the first time, and the ones it claimed before simply stay unused."""
        return self._urls.keys()

    # ---- images ----------------------------------------------------------------------------------

    def claim_image(self, owner: str, sha256: str, phash: str) -> str | None:
        """None when `owner` now holds this image; else why not ("duplicate of <sha256> ...")."""
        return self.claim_image_batch([(owner, sha256, phash)])[0]

    def claim_image_batch(self, requests: list[tuple[str, str, str]]) -> list[str | None]:
        """claim_image for several (owner, sha256, phash) in one transaction, in order: of two near
        duplicates asked together, the first is kept."""
        def claim() -> list[str | None]:
            return [self._claim_image(owner, sha256, int(phash, 16)) for owner, sha256, phash in requests]

        return self.db.atomically(claim) if requests else []

    def _claim_image(self, owner: str, sha256: str, bits: int) -> str | None:
        """Inside a transaction."""
        rows = self.db.query("SELECT owner FROM image_claims WHERE sha256 = ?", (sha256,))
        if rows:
            return None if rows[0][0] == owner else f"duplicate of {sha256} (held by {rows[0][0]})"
        near = self._nearest_other(bits, owner)
        if near is not None:
            return f"duplicate of {near[0]} (pHash distance {near[1]}, held by {near[2]})"
        seq = self.db.query("SELECT COALESCE(MAX(seq), 0) + 1 FROM image_claims")[0][0]
        self.db.execute("INSERT INTO image_claims (sha256, phash, owner, seq) VALUES (?, ?, ?, ?)",
                        (sha256, _signed(bits), owner, seq))
        self.db.executemany("INSERT INTO image_bands (band, value, sha256) VALUES (?, ?, ?)",
                            [(band, (bits >> shift) & mask, sha256) for band, (shift, mask) in enumerate(self._bands)])
        return None

    def _nearest_other(self, bits: int, owner: str) -> tuple[str, int, str] | None:
        """The earliest claimed image of another owner within the distance: (sha256, distance, owner)."""
        if self.near_duplicate_bits < 0:
            return None
        if self._bands:
            clauses = " OR ".join("(b.band = ? AND b.value = ?)" for _ in self._bands)
            values = [v for band, (shift, mask) in enumerate(self._bands) for v in (band, (bits >> shift) & mask)]
            rows = self.db.query(
                f"SELECT DISTINCT c.sha256, c.phash, c.owner, c.seq FROM image_bands b "
                f"JOIN image_claims c ON c.sha256 = b.sha256 WHERE {clauses} ORDER BY c.seq", values)
        else:
            rows = self.db.query("SELECT sha256, phash, owner, seq FROM image_claims ORDER BY seq")
        for sha256, other, holder, _ in rows:
            distance = (bits ^ _unsigned(other)).bit_count()
            if distance <= self.near_duplicate_bits and holder != owner:
                return sha256, distance, holder
        return None


def _signed(bits: int) -> int:
    """SQLite integers are signed 64-bit."""
    return bits - (1 << 64) if bits >= 1 << 63 else bits


def _unsigned(value: int) -> int:
    return value + (1 << 64) if value < 0 else value
