"""Checks shared by the generate tests: the real pipeline against local endpoints."""

from __future__ import annotations

import json
from pathlib import Path

from schemas.rules import task_problems
from schemas.run_store import RunStore


def assert_run_valid(root: Path) -> RunStore:
    """Every task valid with provenance for each image; painted images marked synthetic."""
    store = RunStore.open(root)
    provenance = store.provenance_by_file()
    for ref in store.tasks():
        assert task_problems(ref.folder, provenance, root) == [], ref.folder
        for image in ref.folder.iterdir():
            if image.suffix == ".png" or image.suffix == ".jpg":
                line = provenance[f"{ref.folder.relative_to(root).as_posix()}/{image.name}"]
                assert line["synthetic"] == (line["provider"] == "painter")
                if line["synthetic"]:
                    assert line["generator"]["model"] == "tiny:sd" and line["licence"] is None
        assert json.loads((ref.folder / "plan.json").read_text())["task_kind"] == ref.kind
    return store


def folder_snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under root with its size and mtime: to show a refused command changed nothing."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}
