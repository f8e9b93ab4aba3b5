"""The generate graph: one benchmark task from a seed topic, as a LangGraph StateGraph.

    plan ─► keywords ─► search ─► fetch ─► validate ──all accepted──► assemble ─► check ─► END
               ▲                               │
               └──── refine (≤ R rounds) ◄─────┤ some slot rejected, rounds left
                                               └── rounds exhausted ─► paint ─► assemble

Each node works on every open image slot of the task at once (their model calls run concurrently,
bounded by each backend's limit); a slot leaves the loop accepted (an image the validator said yes
to) or exhausted (R + 1 search rounds without one), and exhausted slots are painted. Paint is one
node that paints, validates and repaints each exhausted slot until the validator accepts or the
paint rounds run out (graphs/generate/slots.py), so the graph's step count does not grow with
them and a kill mid-paint repeats only that node's work: its model calls come from the cache and
a seeded painting is the same file. State holds
paths and hashes only: images live in the run folder's `images/` pool until assemble copies the
chosen ones into the task folder. Any agent that cannot produce valid output ends the task with
`failure = {stage, reason}`, which the runner writes to failures.jsonl.

    graph = build_generate_graph(context).compile(checkpointer=saver)
    await graph.ainvoke(initial_state(spec, domain), {"configurable": {"thread_id": spec.task_id}})

(The runner, graphs/generate/runner.py, does this for every task of a run.)
"""

from __future__ import annotations

import asyncio
import shutil
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph

from agents.ask import AgentError
from agents.keywords import write_queries
from agents.planner import write_plan
from graphs.generate.context import GenerateContext
from graphs.generate.layout import plan_slots, task_json
from graphs.generate.slots import Slot, SlotWork, TaskContext
from graphs.generate.task_list import TaskSpec
from schemas.rules import task_problems
from schemas.schema_check import SchemaViolation
from schemas.task import Plan


class Failure(TypedDict):
    stage: str
    reason: str


class TaskState(TypedDict, total=False):
    task_id: str
    kind: str
    topic: str
    domain: str
    seed: int
    plan: Plan | None
    slots: list[Slot]
    """One per image the task needs (graphs/generate/layout.py); each carries its own search history."""
    failure: Failure | None
    """Set once the task cannot be finished; the runner writes it to failures.jsonl."""
    task_dir: str | None
    """Run-relative task folder, once assemble wrote it."""


def initial_state(spec: TaskSpec, domain: str) -> TaskState:
    return {"task_id": spec.task_id, "kind": spec.kind, "topic": spec.topic, "domain": domain,
            "seed": spec.seed, "plan": None, "slots": [], "failure": None, "task_dir": None}


def build_generate_graph(ctx: GenerateContext) -> StateGraph:
    work = SlotWork(ctx)

    async def plan(state: TaskState) -> dict:
        ctx.on_stage(state["task_id"], "plan")
        s = ctx.settings
        result = await write_plan(ctx.planner, domain=state["domain"], topic=state["topic"], kind=state["kind"],
                                  params=s.params(state["seed"]), may_reject=s.planner_may_reject,
                                  repair_attempts=s.repair_attempts, shape=s.plan_shape)
        return {"plan": result, "slots": plan_slots(result)}

    async def keywords(state: TaskState) -> dict:
        ctx.on_stage(state["task_id"], "keywords")
        s, slots = ctx.settings, list(state["slots"])
        todo = [i for i, slot in enumerate(slots) if slot["status"] == "open"]
        queries = await write_queries(ctx.keywords, task_title=state["plan"]["title"],
                                      slots=[slots[i] for i in todo],
                                      params=s.params(state["seed"], s.keyword_tokens * len(todo)),
                                      repair_attempts=s.repair_attempts)
        for i, found in zip(todo, queries):
            slots[i] = {**slots[i], "queries": found}
        return {"slots": slots}

    async def search(state: TaskState) -> dict:
        ctx.on_stage(state["task_id"], "search")
        return {"slots": await work.search(state["slots"], state["task_id"])}

    async def fetch(state: TaskState) -> dict:
        ctx.on_stage(state["task_id"], "fetch")
        return {"slots": await work.fetch(state["slots"], state["task_id"])}

    async def validate(state: TaskState) -> dict:
        ctx.on_stage(state["task_id"], "validate")
        return {"slots": await _each(state["slots"], "open", lambda slot: work.validate(slot, state["seed"]))}

    async def paint(state: TaskState) -> dict:
        ctx.on_stage(state["task_id"], "paint")
        # One slot after another, unlike the other nodes: a painting overlapping this task's own seeded
        # model calls could draw from torch's global generator between a seed and its samples (the
        # painter's first load does), and one seed would no longer give one run at --concurrency 1.
        slots = [await work.paint(slot, state["seed"], task_context(state["plan"], slot))
                 if slot["status"] == "exhausted" else slot for slot in state["slots"]]
        return {"slots": slots}

    async def assemble(state: TaskState) -> dict:
        ctx.on_stage(state["task_id"], "assemble")
        return {"task_dir": await asyncio.to_thread(_assemble, ctx, state)}

    async def check(state: TaskState) -> dict:
        ctx.on_stage(state["task_id"], "check")
        return await asyncio.to_thread(_check, ctx, state)

    graph = StateGraph(TaskState)
    for name, node in (("plan", plan), ("keywords", keywords), ("search", search), ("fetch", fetch),
                       ("validate", validate), ("paint", paint), ("assemble", assemble), ("check", check)):
        graph.add_node(name, _failing_as(name, node))
    graph.add_edge(START, "plan")
    graph.add_conditional_edges("plan", _unless_failed("keywords"), ["keywords", END])
    for a, b in (("keywords", "search"), ("search", "fetch"), ("fetch", "validate")):
        graph.add_conditional_edges(a, _unless_failed(b), [b, END])
    graph.add_conditional_edges("validate", after_validate, ["keywords", "paint", "assemble", END])
    graph.add_conditional_edges("paint", _unless_failed("assemble"), ["assemble", END])
    graph.add_conditional_edges("assemble", _unless_failed("check"), ["check", END])
    graph.add_edge("check", END)
    return graph


def after_validate(state: TaskState) -> str:
    """Refine while any slot has rounds left, then paint what is exhausted, then assemble."""
    if state.get("failure"):
        return END
    statuses = {slot["status"] for slot in state["slots"]}
    if "open" in statuses:
        return "keywords"
    if "exhausted" in statuses:
        return "paint"
    return "assemble"


def _unless_failed(next_node: str):
    def route(state: TaskState) -> str:
        return END if state.get("failure") else next_node
    return route


def _failing_as(stage: str, node):
    """An agent's give-up becomes the task's failure; anything else is a bug and propagates."""
    async def run(state: TaskState) -> dict:
        try:
            return await node(state)
        except AgentError as err:
            return {"failure": {"stage": err.stage, "reason": err.reason}}
        except SchemaViolation as err:
            return {"failure": {"stage": stage, "reason": str(err).splitlines()[0]}}
    return run


def task_context(plan: Plan, slot: Slot) -> TaskContext:
    """The task around a slot, for its painting prompt: the title and the step's words."""
    if slot["step"] == 0:  # the IOMR start image: the opening scene is its step
        return {"title": plan["title"], "step_text": plan["initial_scene_description"]}
    step = plan["steps"][slot["step"] - 1]
    return {"title": plan["title"], "step_text": step["question"] or step["scene_description"]}


async def _each(slots: list[Slot], status: str, work) -> list[Slot]:
    """`work(slot)` on every slot of `status` concurrently; the first AgentError wins after all have finished."""
    todo = [i for i, slot in enumerate(slots) if slot["status"] == status]
    results: list[Any] = await asyncio.gather(*(work(slots[i]) for i in todo), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    updated = list(slots)
    for i, result in zip(todo, results):
        updated[i] = result
    return updated


def _assemble(ctx: GenerateContext, state: TaskState) -> str:
    """Write provenance, then the task folder (atomic); a re-run after a kill finds it done."""
    store, kind, task_id = ctx.store, state["kind"], state["task_id"]
    folder = store.task_folder(kind, task_id)
    relative = folder.relative_to(store.root).as_posix()
    if store.has_task(kind, task_id):
        return relative
    task, images = task_json(state["plan"], state["slots"], domain=state["domain"], seed=state["seed"])
    known = store.provenance_by_file()
    # Provenance first: a crash between the two leaves a spare line, never an image without one.
    lines = [{**image["provenance"], "file": f"{relative}/{name}"} for name, image in images.items()]
    store.append_provenance([line for line in lines if known.get(line["file"]) != line])
    store.write_task(kind, task_id, task, {name: store.root / image["file"] for name, image in images.items()},
                     extra_json={"plan.json": state["plan"]})
    return relative


def _check(ctx: GenerateContext, state: TaskState) -> dict:
    """Validate the written folder like `vischain validate`; a task that fails is removed. Images are
    checked against their provenance hash, not decoded a second time: the fetcher decoded these bytes."""
    folder = ctx.store.root / state["task_dir"]
    problems = task_problems(folder, ctx.store.provenance_by_file(), ctx.store.root, ctx.licences, decode=False)
    if not problems:
        return {}
    shutil.rmtree(folder, ignore_errors=True)
    return {"failure": {"stage": "check", "reason": str(problems[0])}}
