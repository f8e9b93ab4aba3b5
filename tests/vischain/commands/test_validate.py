import json
import shutil

from typer.testing import CliRunner

from benchmark_data import EXAMPLE_RUN
from vischain.cli import app

EXAMPLE = EXAMPLE_RUN
runner = CliRunner()


def test_a_valid_run_exits_0_with_a_one_line_summary():
    result = runner.invoke(app, ["validate", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "valid: 3 task(s) (icir 1, iomr 1, itmr 1), 24 image(s)"


def test_one_task_folder_inside_a_run_is_checked_with_the_run_provenance():
    result = runner.invoke(app, ["validate", str(EXAMPLE / "tasks" / "itmr" / "itmr-0001")])
    assert result.exit_code == 0 and "valid: 1 task(s)" in result.output


def test_problems_are_listed_with_file_and_pointer_and_exit_1(tmp_path):
    shutil.copytree(EXAMPLE, tmp_path / "run")
    path = tmp_path / "run" / "tasks" / "iomr" / "iomr-0001" / "task.json"
    task = json.loads(path.read_text())
    task["steps"][0]["correct_option"] = "Z"
    path.write_text(json.dumps(task))
    result = runner.invoke(app, ["validate", str(tmp_path / "run")], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "iomr-0001/task.json" in result.output and "/steps/0/correct_option" in result.output
    assert "names no option" in result.output


def test_a_foreign_folder_needs_no_provenance_when_told(tmp_path):
    shutil.copytree(EXAMPLE / "tasks" / "icir" / "icir-0001", tmp_path / "bench" / "IC_task_1")
    assert runner.invoke(app, ["validate", str(tmp_path / "bench")]).exit_code == 1
    result = runner.invoke(app, ["validate", str(tmp_path / "bench"), "--no-provenance"])
    assert result.exit_code == 0 and "icir 1" in result.output


def test_a_missing_path_is_a_one_line_error(tmp_path):
    result = runner.invoke(app, ["validate", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "no such file or folder" in result.output
