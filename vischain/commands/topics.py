"""`vischain topics`: seed topics for a domain, proposed by the planner model, near-duplicates removed.

    vischain topics --domain engineering --n 500 --profile paper --out runs/engineering-topics.yaml
    vischain generate --domain engineering --topics runs/engineering-topics.yaml --tasks 500 --profile paper

VisChainBench's planner generates the procedural tasks itself; the domain files ship a few hand-written
topics each. This command has the profile's planner propose --n topics under the domain's guidance
(its description, each kind's definition and its own topics as examples), split over the kinds by
the domain's mix, and keeps a proposal only when its all-MiniLM-L6-v2 embedding is less similar than
--threshold to every topic kept before it (agents/topics.py says how the default was chosen). The
topic file (YAML, schemas/topics.schema.json) records the model, the prompt's hash, the seed, the
threshold and the counts before and after near-duplicate removal.

Exit codes: 0, --n topics written; 1, fewer distinct topics than asked within the call budget (the
file holds those found); 2, bad input or a model that cannot answer, as one line.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from agents.ask import AgentError
from agents.backends.factory import open_backend
from agents.embedding import MODEL_NAME, PACKAGE, SentenceEmbedder
from agents.topics import DEFAULT_THRESHOLD, KindTopics, TopicRequest, collect_topics, prompt_hash
from graphs.generate.task_list import Domain, load_domain, mixed_kinds, topic_file_text
from graphs.profile import Profile, load_profile
from schemas.durable_files import write_atomically
from schemas.errors import EXIT_INVALID, UsageError
from schemas.task import TASK_KINDS
from vischain.error_lines import fail, one_line_errors

console = Console(emoji=False)


def topics(
    domain: Annotated[str, typer.Option(help="A domain of benchmark_data/domains: daily, engineering, ...")],
    n: Annotated[int, typer.Option("--n", help="Distinct topics wanted, split over the kinds by the domain's mix.")]
        = 500,
    profile: Annotated[str, typer.Option(help="local, paper or demo: its planner proposes the topics.")] = "local",
    config: Annotated[Optional[Path], typer.Option(help="A profile YAML file; replaces --profile.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="The topic file to write; default runs/DOMAIN-topics.yaml.")]
        = None,
    seed: Annotated[int, typer.Option(help="Seeds every proposal call.")] = 0,
    threshold: Annotated[float, typer.Option(help="Cosine similarity at which two topics count as one.")]
        = DEFAULT_THRESHOLD,
    temperature: Annotated[float, typer.Option(help="Sampling temperature of the proposals (seeded).")] = 1.0,
):
    """Have the planner propose seed topics for a domain; near-duplicates removed; a topic file for generate."""
    with one_line_errors():
        if n < 1:
            raise UsageError(f"--n: must be at least 1, got {n}")
        if not -1.0 <= threshold <= 1.0:
            raise UsageError(f"--threshold: {threshold} is not a cosine similarity between -1 and 1")
        if temperature < 0:
            raise UsageError(f"--temperature: must be at least 0, got {temperature}")
        domain_data = load_domain(domain)
        chosen = load_profile(str(config), "--config") if config else load_profile(profile)
        out = Path(out) if out else Path("runs") / f"{domain}-topics.yaml"
        check_out_file(out)
        wanted = Counter(mixed_kinds(domain_data.mix, n))
        started = time.perf_counter()
        try:
            found = asyncio.run(propose_all(chosen, domain_data, wanted, seed, threshold, temperature))
        except AgentError as err:
            raise UsageError(f"the planner ({chosen.planner.model}) could not propose topics: {err.reason}") from None
    provenance = {
        "command": (f"vischain topics --domain {domain} --n {n} "
                    + (f"--config {config}" if config else f"--profile {profile}")
                    + f" --seed {seed} --threshold {threshold:g} --temperature {temperature:g}"),
        "profile": chosen.name, "model": chosen.planner.model, "prompt_hash": prompt_hash(), "seed": seed,
        "temperature": temperature, "embedding_model": f"{MODEL_NAME} ({PACKAGE})", "threshold": threshold,
        "requested": n, "proposed": sum(k.proposed for k in found), "kept": sum(len(k.topics) for k in found),
        "calls": sum(k.calls for k in found),
        "by_kind": {k.kind: {"requested": wanted[k.kind], "proposed": k.proposed, "kept": len(k.topics),
                             "calls": k.calls} for k in found},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    lists = {k.kind: list(k.topics) for k in found if k.topics}
    if not lists:
        fail(f"the planner proposed no usable topic in {provenance['calls']} calls; nothing written", EXIT_INVALID)
    write_atomically(out, topic_file_text(domain, lists, provenance))
    console.print(summary_table(found, wanted, out))
    console.print(f"{provenance['proposed']} proposed, {provenance['kept']} kept (near-duplicates at cosine >= "
                  f"{threshold:g} removed) · {provenance['calls']} calls · {time.perf_counter() - started:.1f} s",
                  highlight=False)
    if provenance["kept"] < n:
        console.print(f"[bold red]{provenance['kept']} of {n} distinct topics[/] within the call budget; the file "
                      f"holds those (exit code {EXIT_INVALID})", highlight=False)
        raise typer.Exit(EXIT_INVALID)


def check_out_file(out: Path) -> None:
    """A new file in a writable folder: a topic file someone may have pruned by hand is never overwritten."""
    if out.exists():
        raise UsageError(f"--out: {out} exists; give another path or remove it")
    parent = out.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UsageError(f"--out: cannot create {out}: {parent} is not a writable folder")


async def propose_all(profile: Profile, domain: Domain, wanted: Counter, seed: int, threshold: float,
                      temperature: float) -> list[KindTopics]:
    """Each kind's topics, the kinds concurrently (their proposals do not depend on each other)."""
    embedder = SentenceEmbedder()
    request = TopicRequest(domain.name, domain.description, domain.topics, temperature)
    model = open_backend(profile.planner)
    try:
        return list(await asyncio.gather(*(
            collect_topics(model, embedder, request, kind=kind, want=wanted[kind], seed=seed, threshold=threshold,
                           repair_attempts=profile.generate.repair_attempts)
            for kind in TASK_KINDS if wanted[kind])))
    finally:
        await model.aclose()


def summary_table(found: list[KindTopics], wanted: Counter, out: Path) -> Table:
    table = Table("kind", "asked", "proposed", "kept", "calls", title=f"vischain topics: {out}")
    for kind in found:
        table.add_row(kind.kind, str(wanted[kind.kind]), str(kind.proposed), str(len(kind.topics)), str(kind.calls))
    return table
