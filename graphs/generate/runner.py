"""Run a request's task graphs against one run folder, with other workers or alone, resuming
whatever a killed run left.

Every task is claimed from the run's task leases (schemas/task_leases.py) before it runs, so any
number of workers (processes on this machine, or on others with `--store postgresql://...`) share
one run: a task folder already written, or a line in failures.jsonl, means done; a checkpoint with
work left resumes from it (`ainvoke(None)`); anything else starts fresh. A worker renews its leases
while it works; when it dies, its tasks go to another worker once the lease runs out. Every model
call goes through the run's call cache, so work finished before a kill costs no model call again.

    store = open_run(request)                      # graphs/generate/request.py
    summary = asyncio.run(run_tasks(store, request))
"""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import tempfile
import time
from collections import Counter
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image as PILImage

from agents.backends.cache import CachedChatModel, CallCache
from agents.backends.factory import ModelSpec, open_backend
from agents.backends.preflight import Prompt, preflight
from agents.keywords import keyword_messages
from agents.paint_service import RemotePainter
from agents.painter import Painter
from agents.planner import REJECTED, planner_messages
from agents.retrieval.fetch import Fetcher
from agents.retrieval.policy import FetchPolicy
from agents.validator import validator_messages
from graphs.generate.context import GenerateContext
from graphs.generate.graph import build_generate_graph, initial_state
from graphs.generate.request import RunRequest
from graphs.generate.shared import SharedState, open_shared_state
from graphs.generate.task_list import TaskSpec
from graphs.profile import AGENT_ROLES, Profile
from schemas.run_claims import RunClaims
from schemas.run_db import StoreUnavailable
from schemas.run_store import RunStore

POLL_SECONDS = 1.0
"""How often a worker with nothing to claim looks again while other workers still hold tasks."""


@dataclass(frozen=True)
class Worker:
    """One process working on a run."""

    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    """host:pid, as `vischain status` shows it."""
    lease: float = 60.0
    """Seconds a task stays this worker's without a renewal (renewed every third of it)."""
    painter: tuple | None = None
    """(address, authkey) of a painter another process serves (agents/painter.py), or None."""


@dataclass
class RunSummary:
    requested: int = 0
    done: Counter = field(default_factory=Counter)
    """Tasks of each kind that exist in the run folder for this task list."""
    failed: Counter = field(default_factory=Counter)
    """Tasks of each kind with a failures.jsonl line."""
    failures: list[dict] = field(default_factory=list)
    """failures.jsonl lines of the failed tasks (schemas/failure.schema.json)."""
    rejections_allowed: bool = False
    """The profile lets the planner reject a topic: such a failure still counts as done for the exit code."""
    retrieved: int = 0
    painted: int = 0
    model_calls: int = 0
    cache_hits: int = 0
    seconds: float = 0.0

    def done_or_failed(self) -> int:
        return sum(self.done.values()) + sum(self.failed.values())

    def unfinished(self) -> list[dict]:
        """The failure lines that make the run fail: all, except planner rejections the profile allows."""
        return [line for line in self.failures if not (self.rejections_allowed and rejected_by_planner(line))]


async def run_tasks(store: RunStore, request: RunRequest, worker: Worker = Worker(),
                    on_stage=lambda task_id, stage: None, on_done=lambda task_id, outcome: None) -> RunSummary:
    """Work on the request's tasks until none is left to claim and no other worker holds one; the
    summary counts every task of the request, whoever made it."""
    started = time.perf_counter()
    specs = {spec.task_id: spec for spec in request.specs}
    state = open_shared_state(store, request.store_url, request.profile.search.near_duplicate_bits)
    calls = 0
    try:
        _mark_finished(store, state, request.specs, on_done)
        if state.leases.open_tasks():  # else nothing to do: do not load a single model
            calls = await _work(store, request, worker, state, specs, on_stage, on_done)
        hits = state.cache.hits
    finally:
        state.close()
    summary = summarise(store, request.specs)
    summary.model_calls, summary.cache_hits = calls, hits
    summary.rejections_allowed = request.profile.generate.planner_may_reject
    summary.seconds = time.perf_counter() - started
    return summary


def _mark_finished(store: RunStore, state: SharedState, specs: tuple[TaskSpec, ...], on_done) -> None:
    """Register the request's tasks; those the run folder already has (made or failed) are finished."""
    state.leases.register([spec.task_id for spec in specs])
    failed = {line["task_id"] for line in store.read_jsonl("failures.jsonl")}
    made = [s.task_id for s in specs if store.has_task(s.kind, s.task_id)]
    state.leases.mark(made, "done")
    state.leases.mark([s.task_id for s in specs if s.task_id in failed and s.task_id not in made], "failed")
    for task_id in [*made, *(failed & {s.task_id for s in specs})]:
        on_done(task_id, "kept")


async def _work(store: RunStore, request: RunRequest, worker: Worker, state: SharedState,
                specs: dict[str, TaskSpec], on_stage, on_done) -> int:
    """`request.concurrency` loops, each claiming and running one task at a time. Returns model calls."""
    await asyncio.to_thread(preflight_agents, request)  # a prompt that cannot fit stops the run before it starts
    async with AsyncExitStack() as stack:
        ctx = await _open_context(stack, store, request.profile, state.cache, state.claims, worker, on_stage)
        saver = await stack.enter_async_context(state.checkpointer(store.root))
        # Imports and models are loaded: park their objects outside the collector's reach, or every
        # full collection walks them all again (docs/generate-throughput.md has what that cost).
        gc.freeze()
        graph = build_generate_graph(ctx).compile(checkpointer=saver)
        recursion_limit = 12 + 5 * (ctx.settings.refine_rounds + 1)
        heartbeat = asyncio.create_task(_renew(state, worker))
        stack.callback(heartbeat.cancel)

        async def loop() -> None:
            while True:
                task_id = await asyncio.to_thread(state.leases.claim, worker.name, worker.lease)
                if task_id is None:
                    if not await asyncio.to_thread(state.leases.open_tasks, worker.name):
                        return  # what is left is this worker's own, in its other loops
                    await asyncio.sleep(POLL_SECONDS)  # another worker holds the rest; its lease may run out
                    continue
                store.remove_stale_staging(task_id)  # a dead worker's half-written folder of this task
                outcome = await _run_one(graph, store, specs[task_id], request.domain, recursion_limit)
                await asyncio.to_thread(state.leases.finish, task_id, outcome)
                if outcome == "pending":
                    await asyncio.sleep(POLL_SECONDS)  # the database is coming back: do not spin
                else:
                    on_done(task_id, outcome)

        await asyncio.gather(*(loop() for _ in range(request.concurrency)))
        return sum(m.calls for m in {id(m): m for m in (ctx.planner, ctx.keywords, ctx.validator)}.values())


def preflight_agents(request: RunRequest) -> None:
    """The largest prompt each agent of this run can be sent, counted with its model's own processor
    and chat template (agents/backends/preflight.py): BackendError, one line, when one cannot fit."""
    profile, shape = request.profile, request.profile.generate.plan_shape
    longest = max(request.specs, key=lambda spec: len(spec.topic))
    slots = [{"description": "x" * shape.image_chars, "tried": []} for _ in range(shape.largest_task())]
    with tempfile.TemporaryDirectory(prefix="vischain-preflight-") as scratch:
        image = Path(scratch) / "largest.png"  # about a large photo: Qwen2-VL-class models count its pixels
        PILImage.new("RGB", (2048, 1536), (128, 128, 128)).save(image)
        prompts = {
            "planner": Prompt(f"the planner prompt of {longest.task_id}",
                              planner_messages(request.domain, longest.topic, longest.kind,
                                               profile.generate.planner_may_reject, shape),
                              reply_tokens=profile.generate.max_new_tokens),
            "keywords": Prompt(f"a keywords prompt for {len(slots)} images", keyword_messages("x" * shape.title_chars,
                                                                                                slots),
                               reply_tokens=profile.generate.keyword_tokens * len(slots)),
            "validator": Prompt("a validator prompt", validator_messages(str(image), "x" * shape.image_chars,
                                                                           "correct"),
                                reply_tokens=profile.generate.keyword_tokens),
        }
        for role in AGENT_ROLES:
            preflight(profile.agent(role), [prompts[role]])


async def _renew(state: SharedState, worker: Worker) -> None:
    while True:
        await asyncio.sleep(worker.lease / 3)
        await asyncio.to_thread(state.leases.renew, worker.name, worker.lease)


async def _run_one(graph, store: RunStore, spec: TaskSpec, domain: str, recursion_limit: int) -> str:
    """"done", "failed" (the failure line written here, once), or "pending": the run's database went
    away mid-task, so the task goes back to be claimed again from its last checkpoint."""
    config = {"configurable": {"thread_id": spec.task_id}, "recursion_limit": recursion_limit}
    try:
        snapshot = await graph.aget_state(config)
        if not snapshot.values:
            final = await graph.ainvoke(initial_state(spec, domain), config)
        elif snapshot.tasks:
            # Resume from the last checkpoint. `tasks`, not `next`: a node that finished before the
            # kill has its writes saved but not applied, and `next` no longer lists it.
            final = await graph.ainvoke(None, config)
        else:
            final = snapshot.values
        failure = final.get("failure")
    except Exception as err:  # a bug or a broken environment: record it, keep the other tasks going
        if _store_error(err):
            return "pending"
        failure = {"stage": "graph", "reason": f"{type(err).__name__}: {err}"[:500]}
    if failure is None:
        return "done"
    store.append_failure({"task_id": spec.task_id, "kind": spec.kind, "topic": spec.topic, **failure})
    return "failed"


def _store_error(err: BaseException) -> bool:
    """The run's database, not the task, failed: a restarted server, a dropped connection, a lock
    another process held too long. Anything else is the task's own failure."""
    operational = any(c.__name__ == "OperationalError" for c in type(err).__mro__)
    return isinstance(err, StoreUnavailable) or (operational and type(err).__module__.startswith(("psycopg",
                                                                                                  "sqlite3")))


async def _open_context(stack: AsyncExitStack, store: RunStore, profile: Profile, cache: CallCache,
                        claims: RunClaims, worker: Worker, on_stage) -> GenerateContext:
    """One backend per distinct model spec (keywords and validator often share one), all behind the cache."""
    backends: dict[ModelSpec, CachedChatModel] = {}
    agents = {}
    for role in AGENT_ROLES:
        spec = profile.agent(role)
        if spec not in backends:
            backends[spec] = CachedChatModel(open_backend(spec), cache)
            stack.push_async_callback(backends[spec].aclose)
        agents[role] = backends[spec]
    p = profile.painter
    painter = RemotePainter(*worker.painter) if worker.painter else \
        Painter(p.model, device=p.device, steps=p.steps, size=p.size, guidance_scale=p.guidance_scale)
    fetch_policy = FetchPolicy(allow_loopback=profile.search.allow_loopback,
                               near_duplicate_bits=profile.search.near_duplicate_bits)
    fetcher = await stack.enter_async_context(Fetcher(store.root, fetch_policy, profile.licences, claims))
    return GenerateContext(store=store, planner=agents["planner"], keywords=agents["keywords"],
                           validator=agents["validator"], painter=painter, fetcher=fetcher, claims=claims,
                           search=profile.search.settings(), providers=profile.search.providers,
                           licences=profile.licences, settings=profile.generate, on_stage=on_stage)


def rejected_by_planner(line: dict) -> bool:
    return line.get("stage") == "plan" and line.get("reason", "").startswith(REJECTED)


def summarise(store: RunStore, specs: tuple[TaskSpec, ...]) -> RunSummary:
    """Counts over the task list as the run folder has it now (this run and earlier ones)."""
    summary = RunSummary(requested=len(specs))
    failures = {line["task_id"]: line for line in store.read_jsonl("failures.jsonl")}
    by_folder: dict[str, list[dict]] = {}
    for file, line in store.provenance_by_file().items():
        by_folder.setdefault(file.rsplit("/", 1)[0], []).append(line)
    for spec in specs:
        if store.has_task(spec.kind, spec.task_id):
            summary.done[spec.kind] += 1
            folder = store.task_folder(spec.kind, spec.task_id).relative_to(store.root).as_posix()
            lines = by_folder.get(folder, [])
            summary.painted += sum(line["synthetic"] for line in lines)
            summary.retrieved += sum(not line["synthetic"] for line in lines)
        elif spec.task_id in failures:
            summary.failed[spec.kind] += 1
            summary.failures.append(failures[spec.task_id])
    return summary
