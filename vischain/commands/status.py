"""`vischain status RUN [--store URL]`: where a run stands, across all its workers.

    vischain status runs/eng
    vischain status runs/eng --store postgresql://me@db/vischain

Prints the tasks done, running (by worker and host, with the time left on each lease), failed and
pending, and every stale lease: a task whose worker stopped renewing (it died, or its machine did);
another worker takes it over when one next looks for work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from schemas.errors import UsageError
from schemas.run_db import StoreUnavailable, open_run_db
from schemas.run_store import RunStore
from schemas.task_leases import TaskLeases
from vischain.error_lines import one_line_errors

console = Console(emoji=False)


def status(
    run: Annotated[Path, typer.Argument(help="A run folder (has run.json).")],
    store: Annotated[Optional[str], typer.Option(help="postgresql://...: the run's shared state, when it "
                                                      "was made with --store.")] = None,
):
    """Tasks done, running (by worker), failed and pending; stale leases."""
    with one_line_errors():
        if not (run / "run.json").is_file():
            raise UsageError(f"RUN: {run} is not a run folder (no run.json)")
        folder = RunStore.open(run)
        kind = folder.run.get("store", "sqlite")
        if (kind == "postgres") != (store is not None):
            raise UsageError(f"--store: {run} keeps its shared state in "
                             f"{'PostgreSQL; pass --store postgresql://...' if kind == 'postgres' else 'SQLite files'}")
        if store is None and not (run / "claims.sqlite").is_file():
            raise UsageError(f"RUN: {run} has not been worked on yet (no claims.sqlite)")
        try:
            db = open_run_db(store, run / "claims.sqlite", f"run_{folder.run.get('run_id', '')}")
        except StoreUnavailable as err:
            raise UsageError(str(err)) from None
        try:
            lease_status = TaskLeases(db).status()
        finally:
            db.close()
    counts = lease_status.counts
    console.print(f"{run}: {folder.status} · done {counts.get('done', 0)} · running {counts.get('running', 0)} · "
                  f"failed {counts.get('failed', 0)} · pending {counts.get('pending', 0)}", highlight=False)
    if lease_status.running or lease_status.stale:
        table = Table("task", "worker (host:process)", "lease")
        for task_id, worker, left in lease_status.running:
            table.add_row(task_id, worker, f"{left:.0f} s left")
        for task_id, worker, ago in lease_status.stale:
            table.add_row(task_id, worker, f"[red]stale[/] (ran out {ago:.0f} s ago)")
        console.print(table)
