"""Profiles and checks shared by the generate tests: the real pipeline against local endpoints."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from schemas.validate import task_problems
from vischain.store import RunStore

DEMO_IMAGES = Path(__file__).parents[1] / "benchmark_data" / "demo_images"


def scripted_profile(folder: Path, base_url: str, *, refine_rounds: int = 1, timeout: float = 2.0,
                     retries: int = 6, images: Path = DEMO_IMAGES, concurrency: int = 32,
                     candidates_per_slot: int = 2) -> Path:
    """A profile file whose three agents are the AgentServer at `base_url`; tiny SD paints."""
    agent = {"model": "scripted", "backend": "openai", "base_urls": [base_url], "timeout": timeout,
             "retries": retries, "concurrency": concurrency}
    profile = {
        "description": "scripted agents on a local server",
        "models": {"planner": agent, "keywords": agent, "validator": agent},
        "painter": {"model": "tiny:sd", "steps": 1, "size": 64},
        "search": {"providers": ["folder"], "folder": str(images)},
        "generate": {"refine_rounds": refine_rounds, "repair_attempts": 2, "candidates_per_slot": candidates_per_slot,
                     "planner_may_reject": False, "max_new_tokens": 512},
    }
    path = folder / "scripted.yaml"
    path.write_text(yaml.safe_dump(profile))
    return path


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
