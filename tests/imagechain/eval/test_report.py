"""Results in the Table 1 layout: cells per column, markdown with n and the paper's numbers, JSON, PNG."""

import json

from PIL import Image
from typer.testing import CliRunner

from imagechain.cli import app
from imagechain.generate import prediction_id
from imagechain.report import COLUMNS, PAPER_TABLE1, build_results, markdown, write_report

runner = CliRunner()
JUDGE = {"kind": "llm", "name": "llm:llama-3-70b", "prompt": "ImageChain Appendix A", "prompt_sha256": "ab" * 32,
         "paper_metric": True}


def _prediction(variant, story, scenes, status="ok"):
    return {"story_id": story, "variant": variant, "model": "m", "prompt_hash": "h", "params": {},
            "num_scenes": scenes, "reference": "r", "text": f"{variant} {story}" if status == "ok" else None,
            "status": status}


def _fixture():
    # ImageChain: C2 yes, C2 no, C3 yes, C4 yes (unparseable No), C6 no, one too long at C5.
    plan = [("s1", 2, True, True), ("s2", 2, False, True), ("s3", 3, True, True), ("s4", 4, False, False),
            ("s5", 6, False, True)]
    predictions = [_prediction("ImageChain", s, n) for s, n, _, _ in plan] + [_prediction("ImageChain", "s6", 5,
                                                                                         "too_long")]
    predictions += [_prediction("MLLM", s, n) for s, n, _, _ in plan]
    judgments = {}
    for p in predictions:
        if p["status"] != "ok":
            continue
        similar, parsed = next((y, ok) for s, _, y, ok in plan if s == p["story_id"])
        similar = similar and p["variant"] == "ImageChain"
        judgments[prediction_id(p)] = {"similar": similar, "parsed": parsed, "raw": "x"}
    return predictions, judgments


def test_cells_follow_the_columns():
    predictions, judgments = _fixture()
    results = build_results(predictions, judgments, JUDGE, {"recipe": "t"})
    assert [row["variant"] for row in results["rows"]] == ["MLLM", "ImageChain"]     # Table 1 order
    cells = results["rows"][1]["cells"]
    assert cells["C2"] == {"n": 2, "yes": 1, "unparseable": 0, "simrate": 50.0, "too_long": 0, "errors": 0,
                           "unjudged": 0}
    assert cells["C3"]["simrate"] == 100.0 and cells["C4"]["unparseable"] == 1 and cells["C4"]["simrate"] == 0.0
    assert cells["C5"]["n"] == 0 and cells["C5"]["simrate"] is None and cells["C5"]["too_long"] == 1
    assert (cells["C4-6"]["n"], cells["C4-6"]["yes"], cells["C4-6"]["too_long"]) == (2, 0, 1)
    assert (cells["C2-6"]["n"], cells["C2-6"]["yes"], cells["C2-6"]["simrate"]) == (5, 2, 40.0)
    assert results["columns"] == list(COLUMNS) == ["C2", "C3", "C4", "C5", "C6", "C4-6", "C2-6"]


def test_markdown_has_n_under_each_row_and_the_paper_beside():
    predictions, judgments = _fixture()
    text = markdown([build_results(predictions, judgments, JUDGE, {})], paper=True)
    lines = text.splitlines()
    assert "| Model | C2 | C3 | C4 | C5 | C6 | C4-6 | C2-6 |" in lines
    row = lines.index("| ImageChain | 50.00 | 100.00 | 0.00 | - | 0.00 | 0.00 | 40.00 |")
    assert lines[row + 1] == "| &nbsp;&nbsp;n | 2 | 1 | 1 | 0 | 1 | 2 | 5 |"
    paper_cells = " | ".join(f"{v:.2f}" for v in PAPER_TABLE1["ImageChain"])
    assert lines[row + 2] == f"| &nbsp;&nbsp;paper | {paper_cells} |"
    assert "sha256 `" + "ab" * 32 + "`" in text
    assert "- ImageChain (C2-6): 1 unparseable, 1 too long" in text
    assert "Not the paper's metric" not in text
    embedding = dict(JUDGE, kind="embedding", name="embedding:x", paper_metric=False, note="NOT the paper's SimRate")
    assert "**Not the paper's metric.**" in markdown([build_results(predictions, judgments, embedding, {})])


def test_table_json_and_png_are_written_and_the_png_decodes(tmp_path):
    predictions, judgments = _fixture()
    paths = write_report([build_results(predictions, judgments, JUDGE, {})], tmp_path, paper=True)
    assert json.loads(paths["json"].read_text())["rows"][1]["cells"]["C2-6"]["simrate"] == 40.0
    assert "| ImageChain |" in paths["markdown"].read_text()
    with Image.open(paths["png"]) as image:
        image.verify()
    with Image.open(paths["png"]) as image:
        assert image.format == "PNG" and image.size == (1000, 520)
        # ImageChain (second row, second palette colour) has bars; MLLM (all zeros) has none.
        assert (255, 127, 14) in {pixel for _, pixel in image.convert("RGB").getcolors(1 << 16)}


def test_report_command_merges_runs(tmp_path):
    predictions, judgments = _fixture()
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
    assert again.exit_code == 0 and "paper" not in again.output


def test_report_bad_input_is_one_line_and_exit_2(tmp_path):
    result = runner.invoke(app, ["report", str(tmp_path / "missing.json")])
    assert result.exit_code == 2 and "results file not found" in result.output
    (tmp_path / "x.json").write_text('{"kind": "other"}')
    result = runner.invoke(app, ["report", str(tmp_path / "x.json")])
    assert result.exit_code == 2 and "not an ImageChain results file" in result.output
