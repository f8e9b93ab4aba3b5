import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from schemas.task import load_tasks
from tests.oracle_runs import EXAMPLE, Oracle, make_run
from vischain.cli import app

runner = CliRunner()
WIDE = {"COLUMNS": "200"}

# One scripted model over two tasks of each kind (10 questions):
#   itmr-0002 q2 wrong, icir-0002 no ANSWER: line, iomr-0002 q1 wrong, icir-0001 text around the answer.
SCRIPT = {("itmr-0002", 2): "wrong", ("icir-0002", 1): "format", ("iomr-0002", 1): "wrong", ("icir-0001", 1): "chatty"}


def policy(model, task, question):
    return SCRIPT.get((task, question), "right")


def test_eval_gives_exactly_the_scripted_ca_and_tc(tmp_path):
    root = make_run(tmp_path / "run", per_kind=2)
    with Oracle(load_tasks(root), tmp_path / "labels", policy) as oracle:
        result = runner.invoke(app, ["eval", str(root), "--model", f"openai:m@{oracle.server.base_url}",
                                     "--concurrency", "3"], env=WIDE)
    assert result.exit_code == 0, result.output
    scores = json.loads((root / "verify" / "scores.json").read_text())["scores"]["openai:m"]
    overall, kinds = scores["overall"], scores["by_kind"]
    assert (overall["ca"], overall["tc"], overall["format_errors"], overall["questions"]) == (0.7, 0.5, 1, 10)
    assert {k: (f["ca"], f["tc"]) for k, f in kinds.items()} == {"itmr": (0.75, 0.5), "icir": (0.5, 0.5),
                                                                "iomr": (0.75, 0.5)}
    assert scores["by_domain"]["engineering"]["tasks"] == 6
    assert "70.0" in result.output and "overall (micro)" in result.output
    lines = [json.loads(s) for s in (root / "verify" / "answers.jsonl").read_text().splitlines()]
    assert len(lines) == 10 and sum(line["format_error"] for line in lines) == 1


def test_a_foreign_folder_is_checked_without_provenance_and_needs_out(tmp_path):
    shutil.copytree(EXAMPLE / "tasks" / "iomr" / "iomr-0001", tmp_path / "bench" / "PI_task_1")
    with Oracle(load_tasks(tmp_path / "bench"), tmp_path / "labels") as oracle:
        model = f"openai:m@{oracle.server.base_url}"
        refused = runner.invoke(app, ["eval", str(tmp_path / "bench"), "--model", model])
        result = runner.invoke(app, ["eval", str(tmp_path / "bench"), "--model", model, "--out", str(tmp_path / "out")])
    assert refused.exit_code == 2 and "--out: required" in refused.output
    assert result.exit_code == 0, result.output
    line = json.loads((tmp_path / "out" / "answers.jsonl").read_text().splitlines()[0])
    assert line["task_id"] == "PI_task_1" and line["correct"]


def test_an_invalid_run_is_refused_naming_the_first_problem(tmp_path):
    root = make_run(tmp_path / "run")
    task_file = root / "tasks" / "iomr" / "iomr-0001" / "task.json"
    task = json.loads(task_file.read_text())
    task["steps"][0]["correct_option"] = "Z"
    task_file.write_text(json.dumps(task))
    result = runner.invoke(app, ["eval", str(root), "--model", "openai:m@http://127.0.0.1:9/v1"], env=WIDE)
    assert result.exit_code == 1
    assert "not a valid benchmark" in result.output and "names no option" in result.output
    assert not (root / "verify").exists()


def test_bad_models_and_flags_are_one_line_errors(tmp_path):
    root = make_run(tmp_path / "run")
    unknown = runner.invoke(app, ["eval", str(root), "--model", "nope:thing", "--out", str(tmp_path / "o")], env=WIDE)
    assert unknown.exit_code == 2 and "cannot load model 'nope:thing'" in unknown.output
    assert len(unknown.output.strip().splitlines()) == 1
    bad_tiny = runner.invoke(app, ["eval", str(root), "--model", "tiny:nope"], env=WIDE)
    assert bad_tiny.exit_code == 2 and "unknown tiny model" in bad_tiny.output
    profile = tmp_path / "p.yaml"
    profile.write_text("description: x\nmodels:\n  planner: {model: a}\n  keywords: {model: a}\n"
                       "  validator: {model: a}\n"
                       "  verifiers:\n    - {model: a, backend: carrier-pigeon}\npainter: {model: b}\n"
                       "search: {providers: [folder]}\n")
    bad_backend = runner.invoke(app, ["eval", str(root), "--profile", str(profile)], env=WIDE)
    assert bad_backend.exit_code == 2 and "backend" in bad_backend.output
    history = runner.invoke(app, ["eval", str(root), "--model", "m", "--history", "oracle"], env=WIDE)
    assert history.exit_code == 2 and "--history" in history.output
    none = runner.invoke(app, ["eval", str(root)], env=WIDE)
    assert none.exit_code == 2 and "--model" in none.output
    twice = runner.invoke(app, ["eval", str(root), "--model", "tiny:qwen2-vl", "--model", "tiny:qwen2-vl"], env=WIDE)
    assert twice.exit_code == 2 and "named twice" in twice.output


def test_the_tiny_in_process_model_runs_the_real_path(tiny_models, tmp_path):
    result = runner.invoke(app, ["eval", str(EXAMPLE), "--model", "tiny:qwen2-vl", "--max-tokens", "4",
                                 "--out", str(tmp_path / "out")], env=WIDE)
    assert result.exit_code == 0, result.output
    lines = [json.loads(s) for s in (tmp_path / "out" / "answers.jsonl").read_text().splitlines()]
    # 2 ITMR + 1 ICIR + 2 IOMR questions; random weights: almost surely format errors.
    assert len(lines) == 5 and {line["model"] for line in lines} == {"tiny:qwen2-vl"}
    assert all(isinstance(line["reply"], str) for line in lines)
    scores = json.loads((tmp_path / "out" / "scores.json").read_text())["scores"]
    assert scores["tiny:qwen2-vl"]["overall"]["tasks"] == 3
    assert Path(tmp_path / "out" / "calls.sqlite").is_file()
