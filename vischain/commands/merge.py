"""`vischain merge A B ... --out C`: join run folders made on several machines (`--shard I/N`).

The joining itself is vischain/merge_runs.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from vischain.error_lines import one_line_errors
from vischain.merge_runs import merge_runs, open_sources

console = Console(emoji=False)


def merge(
    runs: Annotated[list[Path], typer.Argument(help="Run folders to join, in order.")],
    out: Annotated[Path, typer.Option(help="New run folder for the result; must not exist yet.")],
):
    """Join run folders into one: tasks renumbered, duplicate images left out, provenance merged."""
    with one_line_errors():
        stores = open_sources(runs, out)
        report = merge_runs(stores, out)
    console.print(f"merged {len(stores)} runs into {out}: " + ", ".join(f"{k} {n}" for k, n in report["tasks"].items())
                  + f"; {report['duplicates']} task(s) left out for duplicate images")
