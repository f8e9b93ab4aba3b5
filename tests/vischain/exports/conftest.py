"""Each export format written once from the example run, shared by the tests of this folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from benchmark_data import EXAMPLE_RUN
from vischain.cli import app

SOURCE_RUN = EXAMPLE_RUN
runner = CliRunner()


def run_export(run: Path, fmt: str, out: Path | None = None):
    args = ["export", str(run), "--format", fmt] + (["--out", str(out)] if out else [])
    return runner.invoke(app, args, env={"COLUMNS": "300"})


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """format -> its export folder (built on first use)."""
    root = tmp_path_factory.mktemp("exports")
    folders: dict[str, Path] = {}

    def get(fmt: str) -> Path:
        if fmt not in folders:
            result = run_export(SOURCE_RUN, fmt, root / fmt)
            assert result.exit_code == 0, result.output
            folders[fmt] = root / fmt
        return folders[fmt]

    return get
