"""`vischain validate PATH`: check a task folder, a run folder, or any VisChainBench-layout folder."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from schemas.validate import DEFAULT_ALLOW, LicencePolicy, Problem, detect_kind, schema_problems, task_problems
from vischain.errors import EXIT_INVALID, fail


@dataclass
class Report:
    problems: list[Problem] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)
    images: int = 0


def validate_path(path: Path, check_provenance: bool = True) -> Report:
    """Validate a run folder (has run.json), one task folder (has task.json), or a folder of task folders."""
    run_root = _enclosing_run(path)
    provenance, policy, report = None, LicencePolicy(), Report()
    if run_root is not None:
        provenance, policy = _read_run_extras(run_root, report)
    elif check_provenance:
        report.problems.append(Problem(str(path), "", "not inside a run folder, so no provenance.jsonl to check "
                                                      "licences against (--no-provenance for foreign folders)"))
    for folder in _task_folders(path):
        report.problems += task_problems(folder, provenance if check_provenance else None, run_root, policy)
        try:
            kind = detect_kind(json.loads((folder / "task.json").read_text()))
        except (OSError, ValueError):
            kind = None
        report.kinds[kind or "invalid"] = report.kinds.get(kind or "invalid", 0) + 1
        report.images += sum(1 for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp"))
        if (folder / "plan.json").is_file():
            report.problems += _json_file_problems(folder / "plan.json", "plan")
    return report


def _relative(file: str, base: Path) -> str:
    try:
        return str(Path(file).relative_to(base if base.is_dir() else base.parent))
    except ValueError:
        return file


def _enclosing_run(path: Path) -> Path | None:
    for candidate in [path, *path.resolve().parents][:4]:
        if (candidate / "run.json").is_file():
            return candidate
    return None


def _task_folders(path: Path) -> list[Path]:
    if (path / "task.json").is_file():
        return [path]
    return sorted(p.parent for p in path.rglob("task.json") if not any(part.startswith(".") for part in p.parts))


def _read_run_extras(run_root: Path, report: Report) -> tuple[dict, LicencePolicy]:
    provenance = {}
    for name, schema in (("provenance.jsonl", "provenance"), ("failures.jsonl", "failure")):
        path = run_root / name
        if not path.exists():
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as err:
                report.problems.append(Problem(f"{path}:{number}", "", f"not valid JSON: {err.msg}"))
                continue
            report.problems += schema_problems(schema, value, f"{path}:{number}")
            if schema == "provenance" and isinstance(value, dict) and "file" in value:
                provenance[value["file"]] = value
    licences = json.loads((run_root / "run.json").read_text()).get("config", {}).get("licences", {})
    policy = LicencePolicy(allow=frozenset(licences.get("allow", DEFAULT_ALLOW)),
                           accept_unverified=bool(licences.get("accept_unverified", False)))
    return provenance, policy


def _json_file_problems(path: Path, schema: str) -> list[Problem]:
    try:
        value = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        return [Problem(str(path), "", f"not valid JSON: {err.msg}")]
    return schema_problems(schema, value, str(path))


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
        Console().print(table)
        raise typer.Exit(EXIT_INVALID)
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(report.kinds.items()))
    Console().print(f"valid: {tasks} task(s) ({kinds}), {report.images} image(s)")
