"""`vischain generate --workers N`: N worker processes on this machine work on one run.

The parent process opens the run's shared state, starts the painter once (agents/paint_service.py)
and N workers (each its own process, event loop and model clients, running graphs/generate/runner.py
with a name and a lease), then watches: the progress shown is the run's task leases, a worker that
dies is replaced and the tasks it held go back at once, and Ctrl-C stops every worker (their tasks
are given back, so the same command resumes them).

    summary = run_workers(store, request, workers=4, lease=60.0, on_progress=print)
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import queue
import signal
import socket
import time
from dataclasses import dataclass, field

from agents.paint_service import PaintServer
from agents.painter import Painter
from graphs.generate.request import RunRequest
from graphs.generate.runner import RunSummary, Worker, run_tasks, summarise
from graphs.generate.shared import open_shared_state
from schemas.run_store import RunStore
from schemas.task_leases import LeaseStatus

RESTARTS = 3
"""How many times one worker slot is restarted after its process died, before it is left empty."""
WATCH_SECONDS = 0.5


@dataclass
class _Slot:
    number: int
    generation: int = 0
    process: multiprocessing.Process | None = None
    name: str = ""
    restarts: int = 0
    finished: bool = False


@dataclass
class WorkerReport:
    """What one worker process sends back when it is done."""

    name: str
    model_calls: int = 0
    cache_hits: int = 0
    error: str | None = field(default=None)


def run_workers(store: RunStore, request: RunRequest, workers: int, lease: float,
                on_progress=lambda status: None, setup=None) -> RunSummary:
    """Run the request with `workers` processes; returns the summary of the whole run. `setup` runs
    first in every worker (a module-level function: it travels to the new process by name)."""
    setup = setup or _no_setup
    started = time.perf_counter()
    state = open_shared_state(store, request.store_url, request.profile.search.near_duplicate_bits)
    state.leases.register([spec.task_id for spec in request.specs])
    failed = {line["task_id"] for line in store.read_jsonl("failures.jsonl")}
    state.leases.mark([s.task_id for s in request.specs if store.has_task(s.kind, s.task_id)], "done")
    state.leases.mark([s.task_id for s in request.specs if s.task_id in failed
                       and not store.has_task(s.kind, s.task_id)], "failed")
    context = multiprocessing.get_context("spawn")
    reports: multiprocessing.Queue = context.Queue()
    p = request.profile.painter
    painter = Painter(p.model, device=p.device, steps=p.steps, size=p.size, guidance_scale=p.guidance_scale)
    slots = [_Slot(number) for number in range(workers)]
    calls = hits = 0
    try:
        with PaintServer(painter) as paint:
            if state.leases.open_tasks():
                for slot in slots:
                    _start(slot, context, request, lease, (paint.address, paint.authkey), reports, setup)
                _watch(slots, state, context, request, lease, (paint.address, paint.authkey), reports, setup,
                       on_progress)
            on_progress(state.leases.status())
    except KeyboardInterrupt:
        _stop(slots, state)
        raise
    finally:
        state.close()
    while True:
        try:
            report: WorkerReport = reports.get_nowait()
        except queue.Empty:
            break
        calls, hits = calls + report.model_calls, hits + report.cache_hits
    summary = summarise(store, request.specs)
    summary.model_calls, summary.cache_hits = calls, hits
    summary.rejections_allowed = request.profile.generate.planner_may_reject
    summary.seconds = time.perf_counter() - started
    return summary


def _start(slot: _Slot, context, request: RunRequest, lease: float, painter: tuple, reports, setup) -> None:
    slot.generation += 1
    slot.name = f"{socket.gethostname()}:{os.getpid()}-w{slot.number + 1}.{slot.generation}"
    worker = Worker(name=slot.name, lease=lease, painter=painter)
    slot.process = context.Process(target=_worker_main, args=(request, worker, reports, setup), name=slot.name)
    slot.process.start()


def _watch(slots: list[_Slot], state, context, request: RunRequest, lease: float, painter: tuple, reports, setup,
           on_progress) -> None:
    """Until every worker has finished: show progress, replace workers that died."""
    while not all(slot.finished for slot in slots):
        time.sleep(WATCH_SECONDS)
        on_progress(state.leases.status())
        for slot in slots:
            if slot.finished or slot.process.is_alive():
                continue
            slot.process.join()
            if slot.process.exitcode == 0:
                slot.finished = True
                continue
            released = state.leases.release(slot.name)  # its tasks go back now, not when the lease runs out
            if state.leases.open_tasks() and slot.restarts < RESTARTS:
                slot.restarts += 1
                print(f"worker {slot.name} died (exit {slot.process.exitcode}); {released} task(s) given back; "
                      "starting a new one", flush=True)
                _start(slot, context, request, lease, painter, reports, setup)
            else:
                slot.finished = True


def _stop(slots: list[_Slot], state) -> None:
    """Ctrl-C: stop every worker and give its tasks back, so the same command resumes them."""
    for slot in slots:
        if slot.process is not None and slot.process.is_alive():
            slot.process.terminate()
    for slot in slots:
        if slot.process is not None:
            slot.process.join(timeout=10)
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join()
            state.leases.release(slot.name)


def _worker_main(request: RunRequest, worker: Worker, reports, setup) -> None:
    """One worker process. Ctrl-C reaches the whole process group: the parent decides, so it is
    ignored here, and SIGTERM (from the parent) ends the process at once."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    setup()
    store = RunStore.open(request.out)
    summary = asyncio.run(run_tasks(store, request, worker))
    reports.put(WorkerReport(worker.name, summary.model_calls, summary.cache_hits))


def _no_setup() -> None:
    """The default worker set-up: nothing (a named function, so a new process can find it)."""


def describe(status: LeaseStatus) -> str:
    """One line: the run's tasks by state."""
    counts = status.counts
    return (f"done {counts.get('done', 0)} · running {counts.get('running', 0)} · failed {counts.get('failed', 0)}"
            f" · pending {counts.get('pending', 0)}")
