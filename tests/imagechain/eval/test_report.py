"""Results in the Table 1 layout: cells per column, markdown with n and the paper's numbers, JSON, PNG."""

import json

from PIL import Image

from imagechain.eval.report import COLUMNS, PAPER_TABLE1, build_results, markdown, write_report
from tests.imagechain.eval.sample_results import JUDGE, predictions_and_judgments


def test_cells_follow_the_columns():
    predictions, judgments = predictions_and_judgments()
    results = build_results(predictions, judgments, JUDGE, {"recipe": "t"})
    assert [row["variant"] for row in results["rows"]] == ["MLLM", "ImageChain"]     # Table 1 order
    cells = results["rows"][1]["cells"]
    assert cells["C2"] == {"n": 2, "yes": 1, "unparseable": 0, "simrate": 50.0, "too_long": 0, "errors": 0,
                           "unjudged": 0, "n_all": 2, "simrate_all": 50.0}
    assert cells["C3"]["simrate"] == 100.0 and cells["C4"]["unparseable"] == 1 and cells["C4"]["simrate"] == 0.0
    assert cells["C5"]["n"] == 0 and cells["C5"]["simrate"] is None and cells["C5"]["too_long"] == 1
    assert (cells["C4-6"]["n"], cells["C4-6"]["yes"], cells["C4-6"]["too_long"]) == (2, 0, 1)
    assert (cells["C2-6"]["n"], cells["C2-6"]["yes"], cells["C2-6"]["simrate"]) == (5, 2, 40.0)
    # The story too long at C5 counts as not similar over all stories: 2 of 6.
    assert (cells["C2-6"]["n_all"], cells["C2-6"]["simrate_all"]) == (6, 33.33)
    assert (cells["C5"]["n_all"], cells["C5"]["simrate_all"]) == (1, 0.0)
    assert results["columns"] == list(COLUMNS) == ["C2", "C3", "C4", "C5", "C6", "C4-6", "C2-6"]


def test_markdown_has_n_under_each_row_and_the_paper_beside():
    predictions, judgments = predictions_and_judgments()
    text = markdown([build_results(predictions, judgments, JUDGE, {})], paper=True)
    lines = text.splitlines()
    assert "| Model | C2 | C3 | C4 | C5 | C6 | C4-6 | C2-6 |" in lines
    row = lines.index("| ImageChain | 50.00 | 100.00 | 0.00 | - | 0.00 | 0.00 | 40.00 |")
    assert lines[row + 1] == "| &nbsp;&nbsp;n | 2 | 1 | 1 | 0 | 1 | 2 | 5 |"
    assert lines[row + 2] == "| &nbsp;&nbsp;all stories | 50.00 | 100.00 | 0.00 | 0.00 | 0.00 | 0.00 | 33.33 |"
    assert lines[row + 3] == "| &nbsp;&nbsp;n all | 2 | 1 | 1 | 1 | 1 | 3 | 6 |"
    paper_cells = " | ".join(f"{v:.2f}" for v in PAPER_TABLE1["ImageChain"])
    assert lines[row + 4] == f"| &nbsp;&nbsp;paper | {paper_cells} |"
    assert "sha256 `" + "ab" * 32 + "`" in text
    assert "- ImageChain (C2-6): 1 unparseable, 1 too long" in text
    assert "Not the paper's metric" not in text
    embedding = dict(JUDGE, kind="embedding", name="embedding:x", paper_metric=False, note="NOT the paper's SimRate")
    assert "**Not the paper's metric.**" in markdown([build_results(predictions, judgments, embedding, {})])


def test_table_json_and_png_are_written_and_the_png_decodes(tmp_path):
    predictions, judgments = predictions_and_judgments()
    paths = write_report([build_results(predictions, judgments, JUDGE, {})], tmp_path, paper=True)
    assert json.loads(paths["json"].read_text())["rows"][1]["cells"]["C2-6"]["simrate"] == 40.0
    assert "| ImageChain |" in paths["markdown"].read_text()
    with Image.open(paths["png"]) as image:
        image.verify()
    with Image.open(paths["png"]) as image:
        assert image.format == "PNG" and image.size == (1000, 520)
        # ImageChain (second row, second palette colour) has bars; MLLM (all zeros) has none.
        assert (255, 127, 14) in {pixel for _, pixel in image.convert("RGB").getcolors(1 << 16)}
