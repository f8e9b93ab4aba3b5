"""`vischain generate`: make benchmark tasks for a domain with the multi-agent graph.

    vischain generate --domain engineering --profile demo --tasks 3 --out runs/demo

Everything the user gives is checked before anything is written (graphs/generate/request.py): the
domain, the profile, the shard, the out folder. Re-running the same command on the same --out resumes it; a different
config on the same folder is refused (exit 2) and the folder is left as it was.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from agents.ask import NOT_JSON_HINT
from graphs.generate.request import RunRequest, make_request, open_run
from graphs.profile import load_profile
from schemas.errors import EXIT_INVALID
from schemas.run_store import RunStore
from schemas.task import TASK_KINDS
from vischain.error_lines import one_line_errors
from vischain.quiet import quiet_known_noise

console = Console(emoji=False)


def generate(
    domain: Annotated[str, typer.Option(help="A domain of benchmark_data/domains: daily, engineering, ...")],
    tasks: Annotated[int, typer.Option(help="How many tasks (before sharding).")] = 3,
    kind: Annotated[str, typer.Option(help="itmr, icir, iomr, or mixed (the domain's mix).")] = "mixed",
    profile: Annotated[str, typer.Option(help="local, paper or demo.")] = "local",
    config: Annotated[Optional[Path], typer.Option(help="A profile YAML file; replaces --profile.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Run folder; default runs/DOMAIN-PROFILE.")] = None,
    concurrency: Annotated[int, typer.Option(help="Tasks in flight at once.")] = 4,
    seed: Annotated[int, typer.Option(help="Seeds topics, sampling and choice order.")] = 0,
    shard: Annotated[Optional[str], typer.Option(help="I/N: make every N-th task, starting at the I-th.")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes on this machine, sharing the run.")] = 1,
    store: Annotated[Optional[str], typer.Option(
        help="postgresql://USER@HOST/DB: keep the run's shared state there, so workers on several machines "
             "(each with the same command and the run folder mounted) share one run.")] = None,
    lease: Annotated[float, typer.Option(min=1.0, help="Seconds a worker holds a task without renewing it; "
                                                       "after that another worker takes it over.")] = 60.0,
    topics: Annotated[Optional[Path], typer.Option(
        help="A topic file from `vischain topics`: its seed topics replace the domain's.")] = None,
):
    """Plan, illustrate and write benchmark tasks; re-run the same command to resume."""
    with one_line_errors():
        chosen = load_profile(str(config), "--config") if config else load_profile(profile)
        request = make_request(domain=domain, tasks=tasks, kind=kind, profile=chosen, out=out,
                               concurrency=concurrency, seed=seed, shard=shard, store_url=store, topics=topics)
        run = open_run(request)
        try:
            summary = _run_workers(run, request, workers, lease) if workers > 1 else \
                asyncio.run(_run_with_progress(run, request, lease))
        except KeyboardInterrupt:
            console.print("stopped: every worker's tasks were given back; run the same command to resume")
            raise typer.Exit(130) from None
        run.refresh_counts()
        if summary.done_or_failed() == summary.requested:  # nothing in flight anywhere
            run.set_status("complete")
    print_summary(summary, run.root)
    if summary.unfinished():
        raise typer.Exit(EXIT_INVALID)


async def _run_with_progress(store: RunStore, request: RunRequest, lease: float):
    # here: the runner imports langgraph and the agents' backends; `vischain --help` must not
    from graphs.generate.runner import Worker, run_tasks

    stages: dict[str, str] = {}
    columns = (TextColumn("[bold]tasks"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.description}"))
    with Progress(*columns, console=console, transient=True) as progress:
        bar = progress.add_task("", total=len(request.specs))

        def on_stage(task_id: str, stage: str) -> None:
            stages[task_id] = stage
            counts = Counter(stages.values())
            progress.update(bar, description=" · ".join(f"{s} {n}" for s, n in sorted(counts.items())))

        def on_done(task_id: str, outcome: str) -> None:
            stages.pop(task_id, None)
            progress.advance(bar)

        return await run_tasks(store, request, Worker(lease=lease), on_stage=on_stage, on_done=on_done)


def _run_workers(store: RunStore, request: RunRequest, workers: int, lease: float):
    # here: see _run_with_progress
    from graphs.generate.workers import describe, run_workers

    columns = (TextColumn("[bold]tasks"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.description}"))
    with Progress(*columns, console=console, transient=True) as progress:
        bar = progress.add_task("", total=len(request.specs))

        def on_progress(status) -> None:
            done = status.counts.get("done", 0) + status.counts.get("failed", 0)
            progress.update(bar, completed=done, description=f"{workers} workers · {describe(status)}")

        return run_workers(store, request, workers, lease, on_progress, setup=quiet_known_noise)


def print_summary(summary, root: Path) -> None:
    table = Table("kind", "done", "failed", title=f"vischain generate: {root}")
    for kind in TASK_KINDS:
        if summary.done[kind] or summary.failed[kind]:
            table.add_row(kind, str(summary.done[kind]), str(summary.failed[kind]))
    table.add_row("all", str(sum(summary.done.values())), str(sum(summary.failed.values())), style="bold")
    console.print(table)
    console.print(f"images: {summary.retrieved} retrieved, {summary.painted} painted · model calls: "
                  f"{summary.model_calls} (cache hits {summary.cache_hits}) · {summary.seconds:.1f} s")
    # A cause shared by many tasks (a server that drops response_format) is said once, not per task.
    not_json = [line for line in summary.failures if NOT_JSON_HINT in line["reason"]]
    if not_json:
        console.print(f"[yellow]{len(not_json)} task(s) failed[/] because {not_json[0]['reason'][:400]}",
                      highlight=False)
    others = [line for line in summary.failures if line not in not_json]
    for line in others[:5]:
        console.print(f"[yellow]failed[/] {line['task_id']} at {line['stage']}: {line['reason'][:160]}",
                      highlight=False)
    if len(others) > 5:
        console.print(f"... and {len(others) - 5} more in {root / 'failures.jsonl'}")
    unfinished = summary.unfinished()
    if unfinished:
        console.print(f"[bold red]{len(unfinished)} of {summary.requested} requested task(s) were not made[/] "
                      f"(failures.jsonl says why); exit code {EXIT_INVALID}")
