"""Where a run's shared state lives: what every worker of the run must see the same.

    state = open_shared_state(store, store_url=None, near_duplicate_bits=4)    # SQLite in the run folder
    state = open_shared_state(store, "postgresql://db/vischain", 4)            # PostgreSQL: many machines

| what | SQLite (default) | PostgreSQL (`--store URL`) |
| --- | --- | --- |
| task leases, URL and image claims | run/claims.sqlite | schema `run_<run_id>` |
| the model-call cache | run/calls.sqlite | the same schema |
| LangGraph checkpoints | run/state.sqlite (AsyncSqliteSaver) | the same schema (AsyncPostgresSaver) |
| appends to provenance.jsonl, failures.jsonl | a file lock | the schema's advisory lock |

The run folder itself (task folders, images, the logs) is on a filesystem every worker mounts.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from agents.backends.cache import CallCache
from schemas.errors import UsageError
from schemas.run_claims import RunClaims
from schemas.run_db import RunDB, StoreUnavailable, open_run_db
from schemas.run_store import RunStore
from schemas.task_leases import TaskLeases


@dataclass
class SharedState:
    claims: RunClaims
    leases: TaskLeases
    cache: CallCache
    store_url: str | None
    """None: SQLite files in the run folder."""
    schema: str | None
    """The run's PostgreSQL schema."""

    def close(self) -> None:
        for part in (self.claims, self.cache):
            part.close()

    @asynccontextmanager
    async def checkpointer(self, run_root: Path):
        """The LangGraph checkpointer on this state's database."""
        if self.store_url is None:
            async with AsyncSqliteSaver.from_conn_string(str(run_root / "state.sqlite")) as saver:
                # The saver commits about 28 times per task. NORMAL (the saver turns WAL on) skips the
                # fsync of each: a killed process still loses nothing. Other workers may hold the
                # write lock for a moment: wait for it rather than fail.
                await saver.conn.execute("PRAGMA synchronous=NORMAL")
                await saver.conn.execute("PRAGMA busy_timeout=60000")
                yield saver
            return
        # here: only a run on PostgreSQL needs the driver and its checkpointer
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        from psycopg.rows import dict_row
        from psycopg_pool import AsyncConnectionPool

        kwargs = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row,
                  "options": f"-c search_path={self.schema}"}
        # check_connection on every checkout: a pool outlives a database restart by replacing its
        # broken connections instead of handing them out.
        async with AsyncConnectionPool(self.store_url, kwargs=kwargs, min_size=1, max_size=8, open=False,
                                       check=AsyncConnectionPool.check_connection) as pool:
            saver = AsyncPostgresSaver(pool)
            await saver.setup()
            yield saver


def open_shared_state(store: RunStore, store_url: str | None, near_duplicate_bits: int) -> SharedState:
    """The run's shared state, as run.json says it lives; refused (UsageError, one line) when
    `--store` disagrees with the run, or the database cannot be reached."""
    run = store.run
    kind = run.get("store", "sqlite")
    if kind == "postgres" and store_url is None:
        raise UsageError(f"--store: {store.root} keeps its shared state in PostgreSQL; pass --store postgresql://...")
    if kind == "sqlite" and store_url is not None:
        raise UsageError(f"--store: {store.root} keeps its shared state in SQLite files; run it without --store")
    schema = f"run_{run['run_id']}" if store_url else None
    try:
        db: RunDB = open_run_db(store_url, store.root / "claims.sqlite", schema)
    except StoreUnavailable as err:
        raise UsageError(str(err)) from None
    claims = RunClaims(db, near_duplicate_bits)
    claims.claim_task_images(store.provenance_by_file())
    if store_url is None:
        cache = CallCache(store.root / "calls.sqlite")
    else:
        cache = CallCache(db)
        store.use_lock(db.transaction)
    return SharedState(claims, TaskLeases(db), cache, store_url, schema)
