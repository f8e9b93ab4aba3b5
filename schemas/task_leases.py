"""Which worker makes which task: task claims with leases, in the run's database.

Every worker of a run (processes on one machine, or on many) takes the next pending task by
claiming it for `lease` seconds, renews its leases while it works, and marks the task done or
failed at the end. A worker that dies stops renewing; once its lease runs out another worker takes
the task and goes on from the task's last checkpoint.

    leases = TaskLeases(db)
    leases.register(["itmr-0001", "icir-0001"])          # the request's tasks, in order (idempotent)
    task_id = leases.claim("host:1234", lease=60)        # None when nothing is free right now
    leases.renew("host:1234", lease=60)                  # every few seconds, for all its tasks
    leases.finish(task_id, "done")                       # or "failed"
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from schemas.run_db import RunDB

SCHEMA = """
CREATE TABLE IF NOT EXISTS task_leases (
    task_id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    status TEXT NOT NULL,
    worker TEXT,
    lease_until DOUBLE PRECISION,
    attempts INTEGER NOT NULL DEFAULT 0
);
"""
STATUSES = ("pending", "running", "done", "failed")


@dataclass
class LeaseStatus:
    """What `vischain status` prints."""

    counts: dict[str, int] = field(default_factory=dict)
    """pending, running, done, failed -> tasks."""
    running: list[tuple[str, str, float]] = field(default_factory=list)
    """(task_id, worker, seconds left on its lease) of every running task."""
    stale: list[tuple[str, str, float]] = field(default_factory=list)
    """Running tasks whose lease ran out (their worker is gone): (task_id, worker, seconds ago)."""


class TaskLeases:
    def __init__(self, db: RunDB, clock=time.time):
        self.db = db
        self.clock = clock
        self.db.executescript(SCHEMA)

    def register(self, task_ids: list[str]) -> None:
        """Add the tasks not yet known, as pending, keeping the list's order for claims."""
        def add() -> None:
            start = self.db.query("SELECT COALESCE(MAX(seq), 0) FROM task_leases")[0][0]
            self.db.executemany("INSERT INTO task_leases (task_id, seq, status) VALUES (?, ?, 'pending') "
                                "ON CONFLICT DO NOTHING", [(t, start + i) for i, t in enumerate(task_ids, 1)])
        self.db.atomically(add)

    def mark(self, task_ids: list[str], status: str) -> None:
        """Set tasks already made (or failed) in the run folder: a resumed run skips them."""
        if task_ids:
            self.db.atomically(lambda: self.db.executemany(
                "UPDATE task_leases SET status = ?, worker = NULL, lease_until = NULL WHERE task_id = ?",
                [(status, t) for t in task_ids]))

    def claim(self, worker: str, lease: float) -> str | None:
        """The first pending task, or one another worker holds whose lease ran out, now leased to
        `worker` (never its own: a worker too busy to renew in time is still working on it)."""
        now = self.clock()

        def take() -> str | None:
            rows = self.db.query("SELECT task_id FROM task_leases WHERE status = 'pending' OR "
                                 "(status = 'running' AND lease_until < ? AND worker != ?) ORDER BY seq LIMIT 1",
                                 (now, worker))
            if not rows:
                return None
            self.db.execute("UPDATE task_leases SET status = 'running', worker = ?, lease_until = ?, "
                            "attempts = attempts + 1 WHERE task_id = ?", (worker, now + lease, rows[0][0]))
            return rows[0][0]

        return self.db.atomically(take)

    def renew(self, worker: str, lease: float) -> None:
        self.db.atomically(lambda: self.db.execute(
            "UPDATE task_leases SET lease_until = ? WHERE worker = ? AND status = 'running'",
            (self.clock() + lease, worker)))

    def finish(self, task_id: str, status: str) -> None:
        if status not in ("done", "failed", "pending"):
            raise ValueError(f"status: {status!r}")
        self.db.atomically(lambda: self.db.execute(
            "UPDATE task_leases SET status = ?, lease_until = NULL WHERE task_id = ?", (status, task_id)))

    def release(self, worker: str) -> int:
        """A dead worker's running tasks back to pending (its parent knows it died): returns how many."""
        def give_back() -> int:
            count = self.db.query("SELECT COUNT(*) FROM task_leases WHERE worker = ? AND status = 'running'",
                                  (worker,))[0][0]
            self.db.execute("UPDATE task_leases SET status = 'pending', worker = NULL, lease_until = NULL "
                            "WHERE worker = ? AND status = 'running'", (worker,))
            return count
        return self.db.atomically(give_back)

    def open_tasks(self, besides: str | None = None) -> int:
        """Tasks pending or running (with a live lease or not); with `besides`, not counting the
        tasks that worker is running (it will finish those itself)."""
        if besides is None:
            return self.db.query("SELECT COUNT(*) FROM task_leases WHERE status IN ('pending', 'running')")[0][0]
        return self.db.query("SELECT COUNT(*) FROM task_leases WHERE status = 'pending' OR "
                             "(status = 'running' AND worker != ?)", (besides,))[0][0]

    def status(self) -> LeaseStatus:
        now, result = self.clock(), LeaseStatus(counts=dict.fromkeys(STATUSES, 0))
        for task_id, status, worker, until in self.db.query(
                "SELECT task_id, status, worker, lease_until FROM task_leases ORDER BY seq"):
            result.counts[status] = result.counts.get(status, 0) + 1
            if status == "running" and until is not None and until >= now:
                result.running.append((task_id, worker, until - now))
            elif status == "running":
                result.stale.append((task_id, worker, now - (until or now)))
        return result
