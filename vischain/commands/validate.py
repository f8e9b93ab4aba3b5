"""`vischain validate PATH`: check a task folder, a run folder, or any VisChainBench-layout folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from schemas.errors import EXIT_INVALID
from schemas.rules import validate_path
from vischain.error_lines import fail


def _relative(file: str, base: Path) -> str:
    try:
        return str(Path(file).relative_to(base if base.is_dir() else base.parent))
    except ValueError:
        return file


def validate(
    path: Annotated[Path, typer.Argument(help="A run folder, a task folder, or a folder of task folders.")],
    provenance: Annotated[bool, typer.Option(help="Check every image against provenance.jsonl and the licence "
                                                  "policy (off for foreign VisChainBench folders).")] = True,
):
    """Check tasks against their schemas and rules; exit 1 and list the problems if any."""
    if not path.exists():
        fail(f"PATH: no such file or folder: {path}")
    report = validate_path(path, check_provenance=provenance)
    tasks = sum(report.kinds.values())
    if tasks == 0 and not report.problems:
        fail(f"PATH: no task.json found under {path}")
    if report.problems:
        table = Table(title=f"{len(report.problems)} problem(s) under {path}")
        for column in ("file", "pointer", "problem"):
            table.add_column(column, overflow="fold")  # a path cut by an ellipsis could not be found
        for problem in report.problems:
            table.add_row(_relative(problem.file, path), problem.pointer or "/", problem.message)
        Console(emoji=False).print(table)
        raise typer.Exit(EXIT_INVALID)
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(report.kinds.items()))
    Console(emoji=False).print(f"valid: {tasks} task(s) ({kinds}), {report.images} image(s)")
