"""`vischain generate`: make benchmark tasks for a domain with the multi-agent graph.

    vischain generate --domain engineering --profile demo --tasks 3 --out runs/demo

Everything the user gives is checked before anything is written: the domain, the profile, the
shard, the out folder. Re-running the same command on the same --out resumes it; a different
config on the same folder is refused (exit 2) and the folder is left as it was.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections import Counter
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from schemas.errors import UsageError
from schemas.run_store import RunStore
from schemas.task import TASK_KINDS
from vischain.error_lines import one_line_errors
from vischain.profiles import load_profile
from vischain.task_list import KIND_CHOICES, load_domain, parse_shard, plan_tasks

console = Console()
# The config a run folder is bound to: the same values on a re-run resume it, others are refused.
BINDING = ("domain", "kind", "tasks", "seed", "shard", "profile_config")
PROMPT_FILES = ("planner.py", "keywords.py", "validator.py")


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
):
    """Plan, illustrate and write benchmark tasks; re-run the same command to resume."""
    with one_line_errors():
        request = check_request(domain, tasks, kind, profile, config, out, concurrency, seed, shard)
        store = open_run(request)
        summary = asyncio.run(_run_with_progress(store, request))
        store.refresh_counts()
    print_summary(summary, store.root)


def check_request(domain, tasks, kind, profile, config, out, concurrency, seed, shard) -> dict:
    """Everything the run needs, checked; UsageError names the flag or file. Writes nothing."""
    if kind not in KIND_CHOICES:
        raise UsageError(f"--kind: expected one of {', '.join(KIND_CHOICES)}, got {kind!r}")
    for flag, value in (("--tasks", tasks), ("--concurrency", concurrency)):
        if value < 1:
            raise UsageError(f"{flag}: must be at least 1, got {value}")
    domain_data = load_domain(domain)
    profile_data = load_profile(str(config), "--config") if config else load_profile(profile)
    shard_pair = parse_shard(shard)
    folder = profile_data["search"].get("folder")
    if "folder" in profile_data["search"]["providers"] and not (folder and Path(folder, "licenses.jsonl").is_file()):
        raise UsageError(f"search.folder: {folder} has no licenses.jsonl (profile {profile_data['name']})")
    out = Path(out) if out else Path("runs") / f"{domain}-{profile_data['name']}"
    binding = {"domain": domain, "kind": kind, "tasks": tasks, "seed": seed, "shard": f"{shard_pair[0]}/{shard_pair[1]}",
               "profile_config": profile_data}
    check_out_folder(out, binding)
    specs = plan_tasks(domain_data, kind, tasks, seed, shard_pair)
    return {"binding": binding, "out": out, "profile": profile_data, "specs": specs, "concurrency": concurrency}


def check_out_folder(out: Path, binding: dict) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out: {out} exists and is not a folder")
    if (out / "run.json").is_file():
        try:
            config = json.loads((out / "run.json").read_text()).get("config", {})
        except (OSError, ValueError) as err:
            raise UsageError(f"--out: {out / 'run.json'} is unreadable: {err}") from None
        for key in BINDING:
            if config.get(key) != json.loads(json.dumps(binding[key])):
                raise UsageError(f"--out: {out} was made by another config ({key} differs: "
                                 f"{_short(config.get(key))} there, {_short(binding[key])} now); use another --out")
        if not os.access(out, os.W_OK):
            raise UsageError(f"--out: cannot write to {out}")
        return
    if out.is_dir() and any(out.iterdir()):
        raise UsageError(f"--out: {out} is not empty and is not a run folder")
    parent = out
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UsageError(f"--out: cannot create {out}: {parent} is not a writable folder")


def _short(value) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 40 else f"{text[:37]}..."


def open_run(request: dict) -> RunStore:
    out, profile = request["out"], request["profile"]
    if (out / "run.json").is_file():
        store = RunStore.open(out)
        store.remove_stale_staging()
        return store
    models = {role: profile["models"][role]["model"] for role in ("planner", "keywords", "validator")}
    models["painter"] = profile["painter"]["model"]
    config = {**request["binding"], "command": "generate", "profile": profile["name"], "models": models,
              "licences": profile["licences"], "prompts_hash": prompts_hash()}
    try:
        return RunStore.create(out, config, seed=request["binding"]["seed"])
    except OSError as err:
        raise UsageError(f"--out: cannot create {out}: {err.strerror or err}") from None


def prompts_hash() -> str:
    """SHA-256 over the agents' prompt code, so a dataset card can say which prompts made it."""
    agents = Path(__file__).parents[1] / "agents"
    digest = hashlib.sha256()
    for name in PROMPT_FILES:
        digest.update((agents / name).read_bytes())
    return digest.hexdigest()


async def _run_with_progress(store: RunStore, request: dict):
    from vischain.generate_runner import run_tasks

    stages: dict[str, str] = {}
    columns = (TextColumn("[bold]tasks"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.description}"))
    with Progress(*columns, console=console, transient=True) as progress:
        bar = progress.add_task("", total=len(request["specs"]))

        def on_stage(task_id: str, stage: str) -> None:
            stages[task_id] = stage
            counts = Counter(stages.values())
            progress.update(bar, description=" · ".join(f"{s} {n}" for s, n in sorted(counts.items())))

        def on_done(task_id: str, outcome: str) -> None:
            stages.pop(task_id, None)
            progress.advance(bar)

        return await run_tasks(store, request["profile"], request["specs"], domain=request["binding"]["domain"],
                               concurrency=request["concurrency"], on_stage=on_stage, on_done=on_done)


def print_summary(summary, root: Path) -> None:
    table = Table("kind", "done", "failed", title=f"vischain generate: {root}")
    for kind in TASK_KINDS:
        if summary.done[kind] or summary.failed[kind]:
            table.add_row(kind, str(summary.done[kind]), str(summary.failed[kind]))
    table.add_row("all", str(sum(summary.done.values())), str(sum(summary.failed.values())), style="bold")
    console.print(table)
    console.print(f"images: {summary.retrieved} retrieved, {summary.painted} painted · model calls: "
                  f"{summary.model_calls} (cache hits {summary.cache_hits}) · {summary.seconds:.1f} s")
    for line in summary.failures[:5]:
        console.print(f"[yellow]failed[/] {line['task_id']} at {line['stage']}: {line['reason'][:160]}")
    if len(summary.failures) > 5:
        console.print(f"... and {len(summary.failures) - 5} more in {root / 'failures.jsonl'}")
