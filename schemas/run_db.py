"""The database behind a run's shared state: SQLite in the run folder, or PostgreSQL for a run that
several machines share. Both speak the same small interface, so the claims, task leases and call
cache above are written once:

    db = open_run_db(store=None, path=run / "claims.sqlite")                 # embedded default
    db = open_run_db(store="postgresql://h/db", schema="run_1a2b")           # shared by every worker
    with db.transaction():                                                   # serialised against
        rows = db.query("SELECT owner FROM url_claims WHERE url = ?", [url])  # every other process
        db.execute("INSERT INTO url_claims (url, owner) VALUES (?, ?) ON CONFLICT DO NOTHING", [url, me])

SQL is written once with `?` placeholders and the dialect both databases share (ON CONFLICT,
RETURNING, BIGINT). A transaction takes the database's write lock first (SQLite's BEGIN IMMEDIATE,
a PostgreSQL advisory lock), so a check and the write that depends on it cannot interleave with
another process's. A PostgreSQL server that goes away mid-run is waited for: an operation is
retried on a new connection until `reconnect_seconds` have passed, then StoreUnavailable.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from schemas.errors import UsageError

SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
RECONNECT_SECONDS = 120.0
"""How long a worker waits for a restarted PostgreSQL server before it gives up."""
ADVISORY_LOCK = 0x76697363  # "visc", paired with a hash of the run's schema: one lock per run, taken by every write
# transaction (runs sharing a database do not wait for each other)


class StoreUnavailable(RuntimeError):
    """The run's database cannot be reached (at start: a one-line error; mid-run: after retries)."""


class RunDB:
    """The interface every run database offers; see the module docstring."""

    kind: str
    """"sqlite" or "postgres"."""

    def query(self, sql: str, params: Sequence = ()) -> list[tuple]: ...

    def execute(self, sql: str, params: Sequence = ()) -> None: ...

    def executemany(self, sql: str, rows: Sequence[Sequence]) -> None: ...

    def transaction(self) -> contextlib.AbstractContextManager: ...

    def atomically(self, work):
        """work() inside a transaction, the result returned (PostgreSQL: retried whole on reconnect)."""
        with self.transaction():
            return work()

    def executescript(self, script: str) -> None: ...

    def close(self) -> None: ...


class SqliteRunDB(RunDB):
    """One connection shared by this process's threads, under a lock; WAL, so readers never block."""

    kind = "sqlite"

    def __init__(self, path: str | Path):
        self.path = str(path)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a killed process loses nothing committed; only a power cut can drop the
        # last commits, and the steps that made them then run again from the last checkpoint.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._lock = threading.RLock()
        self._depth = 0

    def query(self, sql, params=()):
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def execute(self, sql, params=()):
        with self._lock:
            self._db.execute(sql, params)

    def executemany(self, sql, rows):
        with self._lock:
            self._db.executemany(sql, rows)

    def executescript(self, script):
        with self._lock:
            self._db.executescript(script)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self):
        with self._lock:
            self._db.close()


class PostgresRunDB(RunDB):
    """One connection per process (and a lock over it), in the run's own schema of the database."""

    kind = "postgres"

    def __init__(self, url: str, schema: str, reconnect_seconds: float = RECONNECT_SECONDS):
        if not SCHEMA_NAME.match(schema):
            raise UsageError(f"--store: {schema!r} is not a usable schema name")
        self.url, self.schema, self.reconnect_seconds = url, schema, reconnect_seconds
        self._lock = threading.RLock()
        self._conn = None
        self._in_transaction = False
        self._connect(first=True)

    def _connect(self, first: bool = False) -> None:
        import psycopg  # here: only a run on PostgreSQL needs the driver

        try:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.Error as err:
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise StoreUnavailable(f"--store: cannot reach {_redacted(self.url)}: {reason}") from None
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
        conn.execute(f'SET search_path TO "{self.schema}"')
        self._conn = conn

    def _run(self, work):
        """work(connection), retried on a fresh connection while the server is away."""
        import psycopg  # here: see _connect

        deadline = time.monotonic() + self.reconnect_seconds
        delay = 0.5
        while True:
            try:
                if self._conn is None or self._conn.closed:
                    self._connect()
                return work(self._conn)
            except (psycopg.OperationalError, StoreUnavailable) as err:
                if self._in_transaction:
                    raise  # the transaction's caller starts over as a whole
                if self._conn is not None and not self._conn.closed:
                    with contextlib.suppress(psycopg.Error):
                        self._conn.close()
                self._conn = None
                if time.monotonic() > deadline:
                    raise StoreUnavailable(f"{_redacted(self.url)}: unreachable for {self.reconnect_seconds:.0f} s: "
                                           f"{str(err).strip().splitlines()[0] if str(err).strip() else err}") from None
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def query(self, sql, params=()):
        with self._lock:
            return self._run(lambda conn: conn.execute(_pg(sql), params).fetchall())

    def execute(self, sql, params=()):
        with self._lock:
            self._run(lambda conn: conn.execute(_pg(sql), params))

    def executemany(self, sql, rows):
        with self._lock:
            self._run(lambda conn: conn.cursor().executemany(_pg(sql), rows))

    def executescript(self, script):
        # In one transaction under the advisory lock: two workers creating the same tables at once
        # would otherwise collide in PostgreSQL's catalog (CREATE ... IF NOT EXISTS is not atomic).
        statements = [s.strip() for s in script.split(";") if s.strip()]
        self.atomically(lambda: [self._conn.execute(statement) for statement in statements])

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            self._run(lambda conn: None)  # a live connection (waiting for the server) before BEGIN
            self._in_transaction = True
            try:
                with self._conn.transaction():
                    self._conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (ADVISORY_LOCK, self.schema))
                    yield
            finally:
                self._in_transaction = False

    def atomically(self, work):
        """work() inside a transaction; the whole transaction again if the server went away in it."""
        import psycopg  # here: see _connect

        deadline = time.monotonic() + self.reconnect_seconds
        while True:
            try:
                with self.transaction():
                    return work()
            except psycopg.OperationalError:
                self._conn = None
                if time.monotonic() > deadline:
                    raise StoreUnavailable(f"{_redacted(self.url)}: unreachable") from None
                time.sleep(1.0)

    def close(self):
        with self._lock:
            if self._conn is not None:
                self._conn.close()


def open_run_db(store: str | None, path: Path | None = None, schema: str | None = None) -> RunDB:
    """SQLite at `path` when `store` is None, else the PostgreSQL database `store` names."""
    if store is None:
        return SqliteRunDB(path)
    if not store.startswith(("postgresql://", "postgres://")):
        raise UsageError(f"--store: expected postgresql://..., got {_redacted(store)!r}")
    return PostgresRunDB(store, schema)


def check_reachable(store: str) -> None:
    """StoreUnavailable (one line, password hidden) unless the PostgreSQL server at `store` answers."""
    import psycopg  # here: only a run on PostgreSQL needs the driver

    try:
        with psycopg.connect(store, connect_timeout=10) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise StoreUnavailable(f"--store: cannot reach {_redacted(store)}: {reason}") from None


def _pg(sql: str) -> str:
    return sql.replace("?", "%s")


def _redacted(url: str) -> str:
    """The URL without its password, for error lines."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)
