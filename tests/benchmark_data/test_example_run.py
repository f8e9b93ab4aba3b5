"""The shipped example run is what tests/example_run.py builds, and it validates.

Drawn pixels can differ by a few anti-aliased edge pixels between Pillow versions, so images are
compared by size and the provenance lines without their hashes; every JSON file must be equal.
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from benchmark_data import EXAMPLE_RUN
from schemas.rules import validate_path
from tests.example_run import main as build_example_run


def _files(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file()}


def _provenance(path: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k not in ("sha256", "phash")}
            for line in path.read_text().splitlines()]


def test_the_shipped_example_run_is_what_the_builder_writes_and_it_validates(tmp_path):
    build_example_run(tmp_path / "example")
    shipped, rebuilt = _files(EXAMPLE_RUN), _files(tmp_path / "example")
    assert shipped.keys() == rebuilt.keys()
    for name, path in shipped.items():
        if name.endswith("task.json") or name.endswith("plan.json"):
            assert path.read_bytes() == rebuilt[name].read_bytes(), name
        elif name.endswith(".png"):
            with Image.open(path) as a, Image.open(rebuilt[name]) as b:
                assert a.size == b.size, name
    assert _provenance(shipped["provenance.jsonl"]) == _provenance(rebuilt["provenance.jsonl"])
    shipped_run, rebuilt_run = (json.loads(files["run.json"].read_text()) for files in (shipped, rebuilt))
    assert shipped_run["config"] == rebuilt_run["config"] and shipped_run["counts"] == rebuilt_run["counts"]
    report = validate_path(EXAMPLE_RUN)
    assert report.problems == [] and report.kinds == {"itmr": 1, "icir": 1, "iomr": 1}
