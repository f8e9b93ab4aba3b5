"""`imagechain eval` end to end (scripted generator and judge servers, resume, bad input, a tiny CPU run),
and `imagechain report` merging results files."""

import io
import json
import re

import pytest
from rich.console import Console
from typer.testing import CliRunner

from imagechain.eval.report import build_results
from imagechain.eval.synonyms import EXAMPLES_DIR
from tests.imagechain.eval.sample_results import JUDGE, predictions_and_judgments
from tests.imagechain.story_fixtures import write_storyframes_dir
from tests.servers import FaultyEndpoint, completion
from vischain.commands.imagechain_eval import BarProgress
from vischain.imagechain_cli import app

runner = CliRunner()


def _images(body) -> int:
    return sum(1 for m in body["messages"] if isinstance(m["content"], list)
               for part in m["content"] if part["type"] == "image_url")


def generator(body):
    return completion(f"A scene seen through {_images(body)} images.")


def judge(body):
    prediction = body["messages"][-1]["content"][0]["text"].split("### Predicted caption:\n")[-1]
    # Yes for stories shown with three or more images, No otherwise.
    return completion("Yes." if int(prediction.split(" through ")[1].split()[0]) >= 3 else "No")


def write_recipe(path, source, model, judge_model, **extra):
    recipe = {"name": "t", "source": str(source), "split": "val", "bucket": "C2-6", "model": model,
              "variants": ["MLLM", "FinalScene", "ImageChain"], "judge": judge_model, "out": str(path.parent / "out"),
              "generation": {"max_new_tokens": 8}, "concurrency": 2, "scene_visual": "frame", **extra}
    path.write_text(json.dumps(recipe))  # JSON is YAML
    return path


@pytest.fixture(scope="module")
def storyframes_dir(tmp_path_factory):
    return write_storyframes_dir(tmp_path_factory.mktemp("StoryFrames"))


@pytest.fixture
def servers():
    with FaultyEndpoint(generator) as gen, FaultyEndpoint(judge) as jud:
        yield gen, jud


def test_eval_writes_the_table_and_resumes_without_regenerating(storyframes_dir, tmp_path, servers):
    gen, jud = servers
    recipe = write_recipe(tmp_path / "r.yaml", storyframes_dir, f"openai:gen@{gen.base_url}",
                          f"openai:llama-3-70b@{jud.base_url}")
    result = runner.invoke(app, ["eval", "--recipe", str(recipe)])
    assert result.exit_code == 0, result.output
    assert (gen.requests, jud.requests) == (6, 6)           # 2 val stories x 3 variants, each judged once
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    cells = {row["variant"]: row["cells"] for row in results["rows"]}
    assert [cells["MLLM"][c]["simrate"] for c in ("C2", "C3", "C2-6")] == [0.0, 100.0, 50.0]
    assert cells["FinalScene"]["C2-6"] == {"n": 2, "yes": 0, "unparseable": 0, "simrate": 0.0, "too_long": 0,
                                           "errors": 0, "unjudged": 0, "n_all": 2, "simrate_all": 0.0}
    assert results["judge"]["prompt_sha256"] and results["generation"]["seed"] == 30
    assert "| ImageChain | 0.00 | 100.00 |" in result.output
    assert not re.search(r"predictions: \d+/\d+|judgments: \d+/\d+", result.output)   # bars, not a line per step
    assert {p.name for p in (tmp_path / "out").iterdir()} >= {"predictions.jsonl", "judgments.jsonl",
                                                              "results.json", "results.md", "simrate.png"}

    again = runner.invoke(app, ["eval", "--recipe", str(recipe)])
    assert again.exit_code == 0 and (gen.requests, jud.requests) == (6, 6)    # nothing sent again

    predictions = tmp_path / "out" / "predictions.jsonl"
    lines = predictions.read_text().splitlines()
    predictions.write_text("\n".join(lines[:-2]) + "\n" + lines[-2][:30])   # as a kill leaves it
    resumed = runner.invoke(app, ["eval", "--recipe", str(recipe)])
    assert resumed.exit_code == 0, resumed.output
    assert gen.requests == 8 and jud.requests == 6   # two regenerated; their judgments were kept
    assert "2 new, 4 resumed" in resumed.output


def test_variants_and_judge_flags(storyframes_dir, tmp_path, servers):
    gen, jud = servers
    recipe = write_recipe(tmp_path / "r.yaml", storyframes_dir, f"openai:gen@{gen.base_url}", "none")
    result = runner.invoke(app, ["eval", "--recipe", str(recipe), "--variants", "VisualContext",
                                 "--judge", f"openai:j@{jud.base_url}", "--limit", "1", "--greedy"])
    assert result.exit_code == 0, result.output
    assert (gen.requests, jud.requests) == (1, 1)
    record = json.loads((tmp_path / "out" / "predictions.jsonl").read_text().splitlines()[0])
    assert record["variant"] == "VisualContext" and record["params"]["greedy"] is True


def test_a_failed_request_is_recorded_and_retried_next_run(storyframes_dir, tmp_path):
    with FaultyEndpoint(generator, faults=[("status", 400)]) as gen:
        recipe = write_recipe(tmp_path / "r.yaml", storyframes_dir, f"openai:gen@{gen.base_url}", "none",
                              concurrency=1)
        first = runner.invoke(app, ["eval", "--recipe", str(recipe)])
        assert first.exit_code == 0 and "1 errors" in first.output
        second = runner.invoke(app, ["eval", "--recipe", str(recipe)])
        assert second.exit_code == 0 and "1 new, 5 resumed" in second.output
        assert gen.requests == 7


@pytest.mark.parametrize("args, message", [
    (["--recipe", "missing.yaml"], "--recipe: file not found: missing.yaml"),
    (["--recipe", "r.yaml", "--variants", "Bogus"], "--variants: unknown variant 'Bogus'"),
    (["--recipe", "r.yaml", "--judge", ""], "--judge"),
    (["--recipe", "bad.yaml"], "bad.yaml: unknown field 'colour'"),
    (["--recipe", "nosource.yaml"], "field 'source' is required"),
    (["--recipe", "cue.yaml"], "cue_f1.behaviour_graph: file not found: g.json"),
    (["--recipe", "gen.yaml"], "generation: temperature: expected a number"),
    (["--recipe", "icl.yaml"], "icl.yaml: icl.limit must be a positive integer, got None"),
    (["--recipe", "judge.yaml"], "judge.yaml: judge: unknown field 'colour'; known: kind, model, threshold"),
    (["--recipe", "judge2.yaml"], "judge.model: unknown field 'colour'"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    write_recipe(tmp_path / "r.yaml", tmp_path / "nowhere", "tiny:llava-next", "none")
    (tmp_path / "bad.yaml").write_text("name: x\nsource: y\nmodel: z\ncolour: red\n")
    (tmp_path / "nosource.yaml").write_text("name: x\nmodel: z\n")
    (tmp_path / "cue.yaml").write_text("name: x\nsource: y\nmodel: z\n"
                                       "cue_f1: {extractor: m, behaviour_graph: g.json}\n")
    (tmp_path / "gen.yaml").write_text("name: x\nsource: y\nmodel: z\ngeneration: {temperature: hot}\n")
    (tmp_path / "icl.yaml").write_text("name: x\nsource: y\nmodel: z\nicl: {limit: null}\n")
    (tmp_path / "judge.yaml").write_text("name: x\nsource: y\nmodel: z\njudge: {kind: llm, model: m, colour: red}\n")
    (tmp_path / "judge2.yaml").write_text("name: x\nsource: y\nmodel: z\njudge: {model: {model: m, colour: red}}\n")
    result = runner.invoke(app, ["eval", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert len([line for line in result.output.splitlines() if line.startswith("error:")]) == 1


def test_missing_source_names_it(tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", tmp_path / "nowhere", "tiny:llava-next", "none")
    result = runner.invoke(app, ["eval", "--recipe", str(recipe)])
    assert result.exit_code == 2 and "nowhere" in result.output


@pytest.mark.parametrize("image_mode", ["native", "single-tile"])
def test_tiny_recipe_runs_on_cpu(tiny_models, storyframes_dir, tmp_path, image_mode):
    recipe = write_recipe(tmp_path / "r.yaml", storyframes_dir, "tiny:llava-next", "tiny:llama",
                          variants=["MLLM-ICL", "ImageChain"], generation={"max_new_tokens": 3},
                          scene_visual="mean", image_mode=image_mode)
    result = runner.invoke(app, ["eval", "--recipe", str(recipe)])
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [row["variant"] for row in results["rows"]] == ["MLLM-ICL", "ImageChain"]
    assert all(row["cells"]["C2-6"]["n"] == 2 for row in results["rows"])
    assert results["scene_visual"] == "mean" and results["image_mode"] == image_mode
    records = [json.loads(line) for line in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    # The fine-tuned variant averages every frame of a scene; the in-context baseline sees one frame.
    assert {(r["variant"], r["params"]["scene_input"], r["params"]["image_mode"]) for r in records} == {
        ("MLLM-ICL", "frame:first", image_mode), ("ImageChain", "mean", image_mode)}


def test_recipe_model_mistakes_are_one_line_errors(tmp_path, servers):
    gen, _ = servers
    recipe = write_recipe(tmp_path / "r.yaml", tmp_path, f"openai:gen@{gen.base_url}", "none",
                          variants=["ImageChain"], scene_visual="mean")
    result = runner.invoke(app, ["eval", "--recipe", str(recipe)])
    assert result.exit_code == 2
    assert "variants.ImageChain: openai:gen is served over HTTP; scene_visual mean needs the model in this " \
           "process" in result.output
    recipe = write_recipe(tmp_path / "r.yaml", tmp_path, {"model": f"openai:gen@{gen.base_url}", "colour": 1},
                          "none")
    result = runner.invoke(app, ["eval", "--recipe", str(recipe)])
    assert result.exit_code == 2 and "model: unknown field 'colour'" in result.output


def test_cue_f1_from_a_recipe(storyframes_dir, tmp_path, servers):
    gen, _ = servers
    lists = {"reference_objects": ["man", "cup"], "reference_behaviours": ["pick up", "walk"],
             "prediction_objects": ["man"], "prediction_behaviours": ["grab", "run", "jump"]}
    with FaultyEndpoint(completion(json.dumps(lists))) as extractor:
        recipe = write_recipe(tmp_path / "r.yaml", storyframes_dir, f"openai:gen@{gen.base_url}", "none",
                              variants=["ImageChain"], cue_f1={
                                  "extractor": f"openai:x@{extractor.base_url}", "compat": True,
                                  "behaviour_graph": str(EXAMPLES_DIR / "example-robo-behaviour.json")})
        result = runner.invoke(app, ["eval", "--recipe", str(recipe)])
        assert result.exit_code == 0, result.output
        assert extractor.requests == 2
    row = json.loads((tmp_path / "out" / "results.json").read_text())["rows"][0]
    # Behaviours: grab -> "pick up" ends nothing ("walk" remains), run and jump stay: TP 1, FP 2, FN 1.
    assert row["cue_f1"]["behaviour"]["C2-6"] == {"n": 2, "precision": 33.33, "recall": 50.0, "f1": 40.0}
    # Objects: no graph, exact matches only: TP 1 (man), FN 1 (cup): P 100, R 50, F1 66.67.
    assert row["cue_f1"]["object"]["C2-6"] == {"n": 2, "precision": 100.0, "recall": 50.0, "f1": 66.67}
    assert "## Cue F1 (behaviour, macro %)" in result.output


def test_report_command_merges_runs(tmp_path):
    predictions, judgments = predictions_and_judgments()
    first = build_results([p for p in predictions if p["variant"] == "MLLM"], judgments, JUDGE, {})
    second = build_results([p for p in predictions if p["variant"] == "ImageChain"], judgments, JUDGE, {})
    for name, results in (("a.json", first), ("b.json", second)):
        (tmp_path / name).write_text(json.dumps(results))
    result = runner.invoke(app, ["report", str(tmp_path / "a.json"), str(tmp_path / "b.json"),
                                 "--out", str(tmp_path / "merged")])
    assert result.exit_code == 0, result.output
    assert "| MLLM |" in result.output and "| ImageChain |" in result.output
    merged = json.loads((tmp_path / "merged" / "results.json").read_text())
    assert [row["variant"] for row in merged["rows"]] == ["MLLM", "ImageChain"]
    assert (tmp_path / "merged" / "simrate.png").is_file()
    again = runner.invoke(app, ["report", str(tmp_path / "merged" / "results.json"), "--no-paper"])
    assert again.exit_code == 0 and "&nbsp;&nbsp;paper |" not in again.output


def toy_cell(n, yes, too_long=0, errors=0, unjudged=0) -> dict:
    # As an older results file holds it: no simrate_all / n_all, which the report computes from the counts.
    return {"n": n, "yes": yes, "unparseable": 0, "simrate": round(100 * yes / n, 2) if n else None,
            "too_long": too_long, "errors": errors, "unjudged": unjudged}


def test_report_prints_simrate_over_judged_and_over_all_stories(tmp_path):
    """Toy results: at C2-6, 6 judged (3 Yes), 2 too long and 1 failed; the paper's denominator is 9."""
    cells = {column: toy_cell(0, 0) for column in ("C2", "C3", "C4", "C5", "C6", "C4-6", "C2-6")}
    cells.update({"C2": toy_cell(4, 3, errors=1), "C3": toy_cell(2, 0, too_long=2), "C2-6": toy_cell(6, 3, 2, 1),
                  "C4": toy_cell(0, 0, unjudged=1)})
    toy = {"kind": "imagechain-results", "version": 1, "judge": JUDGE, "columns": list(cells),
           "rows": [{"variant": "ImageChain", "model": "m", "judge": JUDGE["name"], "cells": cells}]}
    (tmp_path / "toy.json").write_text(json.dumps(toy))
    result = runner.invoke(app, ["report", str(tmp_path / "toy.json"), "--no-paper"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    row = lines.index("| ImageChain | 75.00 | 0.00 | - | - | - | - | 50.00 |")
    assert lines[row + 1] == "| &nbsp;&nbsp;n | 4 | 2 | 0 | 0 | 0 | 0 | 6 |"
    # C4 has an unjudged prediction: its all-stories figure stays open rather than guessing a No.
    assert lines[row + 2] == "| &nbsp;&nbsp;all stories | 60.00 | 0.00 | - | - | - | - | 33.33 |"
    assert lines[row + 3] == "| &nbsp;&nbsp;n all | 5 | 4 | 0 | 0 | 0 | 0 | 9 |"


def test_report_bad_input_is_one_line_and_exit_2(tmp_path):
    result = runner.invoke(app, ["report", str(tmp_path / "missing.json")])
    assert result.exit_code == 2 and "results file not found" in result.output
    (tmp_path / "x.json").write_text('{"kind": "other"}')
    result = runner.invoke(app, ["report", str(tmp_path / "x.json")])
    assert result.exit_code == 2 and "not an ImageChain results file" in result.output


def test_a_long_step_is_one_bar_with_counts_rate_and_eta(monkeypatch):
    screen = io.StringIO()
    monkeypatch.setattr("vischain.progress.stderr", Console(file=screen, force_terminal=True, width=120))
    with BarProgress().bar("judgments", 40) as tick:
        for done in (5, 17, 40):      # the pipeline reports items done so far, not increments
            tick(done)
    frames = screen.getvalue()        # the bar's last frame is drawn as it closes
    assert "judgments" in frames and "40/40" in frames and "/s" in frames and "eta" in frames
    assert "62/40" not in frames      # each tick advanced by the difference only
