"""Run many task graphs at once against one run folder, resuming whatever a killed run left.

For each task of the list: a task folder already written, or a line in failures.jsonl, means done;
a checkpoint with work left resumes from it (`ainvoke(None)`); anything else starts fresh. Every
model call goes through one cache in the run's calls.sqlite, so work finished before a kill costs
no model call again even when its graph step had not been checkpointed yet.

    store = open_run(request)                      # graphs/generate/request.py
    summary = asyncio.run(run_tasks(store, request))
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections import Counter
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from agents.backends.cache import CachedChatModel, CallCache
from agents.backends.factory import ModelSpec, open_backend
from agents.painter import Painter
from agents.planner import REJECTED
from agents.retrieval.fetch import Fetcher
from agents.retrieval.policy import FetchPolicy
from graphs.generate.context import GenerateContext
from graphs.generate.graph import build_generate_graph, initial_state
from graphs.generate.request import RunRequest
from graphs.generate.task_list import TaskSpec
from graphs.profile import AGENT_ROLES, Profile
from schemas.run_store import RunStore


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

    def unfinished(self) -> list[dict]:
        """The failure lines that make the run fail: all, except planner rejections the profile allows."""
        return [line for line in self.failures if not (self.rejections_allowed and rejected_by_planner(line))]


async def run_tasks(store: RunStore, request: RunRequest, on_stage=lambda task_id, stage: None,
                    on_done=lambda task_id, outcome: None) -> RunSummary:
    """Every task of the request made, failed, or kept from an earlier run; the summary counts them."""
    started = time.perf_counter()
    specs, domain = request.specs, request.domain
    failed_ids = {line["task_id"] for line in store.read_jsonl("failures.jsonl")}
    finished = {s.task_id for s in specs if store.has_task(s.kind, s.task_id) or s.task_id in failed_ids}
    for task_id in finished:
        on_done(task_id, "kept")
    if len(finished) == len(specs):  # nothing to do: do not load a single model
        summary = summarise(store, specs)
        summary.rejections_allowed = request.profile.generate.planner_may_reject
        summary.seconds = time.perf_counter() - started
        return summary
    cache = CallCache(store.calls_db)
    async with AsyncExitStack() as stack:
        ctx = await _open_context(stack, store, request.profile, cache, on_stage)
        saver = await stack.enter_async_context(_saver(store.state_db))
        # Imports and models are loaded: park their objects outside the collector's reach, or every
        # full collection walks them all again (docs/generate-throughput.md has what that cost).
        gc.freeze()
        graph = build_generate_graph(ctx).compile(checkpointer=saver)
        recursion_limit = 12 + 5 * (ctx.settings.refine_rounds + 1)
        slots = asyncio.Semaphore(request.concurrency)

        async def one(spec: TaskSpec) -> None:
            async with slots:
                outcome = await _run_one(graph, store, spec, domain, recursion_limit)
            on_done(spec.task_id, outcome)

        await asyncio.gather(*(one(spec) for spec in specs if spec.task_id not in finished))
        calls = sum(m.calls for m in {id(m): m for m in (ctx.planner, ctx.keywords, ctx.validator)}.values())
    hits = cache.hits
    cache.close()
    summary = summarise(store, specs)
    summary.model_calls, summary.cache_hits = calls, hits
    summary.rejections_allowed = request.profile.generate.planner_may_reject
    summary.seconds = time.perf_counter() - started
    return summary


async def _run_one(graph, store: RunStore, spec: TaskSpec, domain: str, recursion_limit: int) -> str:
    """"done" or "failed"; the failure line is written here, once."""
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
        failure = {"stage": "graph", "reason": f"{type(err).__name__}: {err}"[:500]}
    if failure is None:
        return "done"
    store.append_failure({"task_id": spec.task_id, "kind": spec.kind, "topic": spec.topic, **failure})
    return "failed"


async def _open_context(stack: AsyncExitStack, store: RunStore, profile: Profile, cache: CallCache,
                        on_stage) -> GenerateContext:
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
    painter = Painter(p.model, device=p.device, steps=p.steps, size=p.size, guidance_scale=p.guidance_scale)
    fetch_policy = FetchPolicy(allow_loopback=profile.search.allow_loopback,
                               near_duplicate_bits=profile.search.near_duplicate_bits)
    claims = store.open_claims(fetch_policy.near_duplicate_bits)
    stack.callback(claims.close)
    fetcher = await stack.enter_async_context(Fetcher(store.root, fetch_policy, profile.licences, claims))
    return GenerateContext(store=store, planner=agents["planner"], keywords=agents["keywords"],
                           validator=agents["validator"], painter=painter, fetcher=fetcher, claims=claims,
                           search=profile.search.settings(), providers=profile.search.providers,
                           licences=profile.licences, settings=profile.generate, on_stage=on_stage)


@asynccontextmanager
async def _saver(path: Path):
    async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
        # The saver commits about 28 times per task. NORMAL (the saver turns WAL on) skips the fsync
        # of each: a killed process still loses nothing, a power cut at most the last few checkpoints,
        # whose steps then run again from cached calls. Task folders are fsynced on their own.
        await saver.conn.execute("PRAGMA synchronous=NORMAL")
        yield saver


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
