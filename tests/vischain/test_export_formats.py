"""`vischain export`: sharegpt feeds a real processor; the VLMEvalKit TSV splits as ImageMTDataset does."""

import ast
import base64
import csv
import json
import shutil
import sys
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from benchmark_data import EXAMPLE_RUN
from vischain.cli import app

EXAMPLE = EXAMPLE_RUN
runner = CliRunner()


def export(run: Path, fmt: str, out: Path):
    return runner.invoke(app, ["export", str(run), "--format", fmt, "--out", str(out)], env={"COLUMNS": "300"})


def test_sharegpt_has_one_image_placeholder_per_image_and_answer_turns(tmp_path):
    result = export(EXAMPLE, "sharegpt", tmp_path / "chains.json")
    assert result.exit_code == 0, result.output
    records = json.loads((tmp_path / "chains.json").read_text())
    assert [len(r["images"]) for r in records] == [6, 9, 9]  # itmr, icir, iomr: every image of each task
    for record in records:
        assert sum(m["content"].count("<image>") for m in record["messages"]) == len(record["images"])
        assert [m["role"] for m in record["messages"]] == ["user", "assistant"] * (len(record["messages"]) // 2)
        assert all(Path(image).is_absolute() and Path(image).is_file() for image in record["images"])
    itmr, icir, iomr = records
    # ITMR: the 1-based position of the correct choice; ICIR: the image_id; IOMR: the letter.
    assert [m["content"] for m in itmr["messages"][1::2]] == ["ANSWER: 1", "ANSWER: 2"]
    assert itmr["messages"][0]["content"].startswith("A gearbox is open on the bench")
    assert [m["content"] for m in icir["messages"][1::2]] == ["ANSWER: 3"]
    assert "Example 1: Find the gear with 6 teeth." in icir["messages"][0]["content"]
    assert [m["content"] for m in iomr["messages"][1::2]] == ["ANSWER: B", "ANSWER: C"]
    assert itmr["images"][0].endswith("itmr-0001/q1_a.png") and iomr["images"][0].endswith("iomr-0001/start.png")


def test_sharegpt_feeds_a_llava_next_processor_without_an_image_token_mismatch(tmp_path, tiny_models):
    from agents.backends.hf_loading import load_processor

    assert export(EXAMPLE, "sharegpt", tmp_path).exit_code == 0  # a folder: RUN_sharegpt.json inside
    records = json.loads((tmp_path / "example_run_sharegpt.json").read_text())
    processor = load_processor(str(tiny_models["llava-next"]), "llava_next")
    image_token_id = processor.tokenizer.convert_tokens_to_ids(processor.image_token)
    for record in records:
        text = processor.apply_chat_template(record["messages"], tokenize=False)
        text = text.replace("<image>", processor.image_token)
        images = [Image.open(path).convert("RGB") for path in record["images"]]
        batch = processor(text=text, images=images, return_tensors="pt")
        assert batch["pixel_values"].shape[0] == len(images)
        assert (batch["input_ids"] == image_token_id).sum() > len(images)  # each placeholder expanded
        with pytest.raises(ValueError, match="tokens"):  # the check that a wrong count would trip
            processor(text=text, images=images[:-1], return_tensors="pt")


def test_a_placeholder_in_the_task_text_is_refused_naming_the_task(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(EXAMPLE, run)
    path = run / "tasks" / "itmr" / "itmr-0001" / "task.json"
    task = json.loads(path.read_text())
    task["questions"][0]["question"] = "Which part (see <image>) replaces the gear?"
    path.write_text(json.dumps(task))
    result = export(run, "sharegpt", tmp_path / "out.json")
    assert result.exit_code == 2
    assert "task itmr/itmr-0001: 7 <image> placeholder(s) for 6 image(s)" in result.output
    assert not (tmp_path / "out.json").exists()


def read_vlmevalkit_tsv(path: Path) -> list[dict]:
    """What VLMEvalKit does with the file: read the TSV, then toliststr (Python literal) each list cell."""
    csv.field_size_limit(sys.maxsize)
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    for row in rows:
        for column in ("question", "answer", "image", "image_path"):
            row[column] = [str(x) for x in ast.literal_eval(row[column])]
    return rows


def test_vlmevalkit_mt_rows_split_on_imagehere_into_the_run_images(tmp_path):
    result = export(EXAMPLE, "vlmevalkit-mt", tmp_path / "chains.tsv")
    assert result.exit_code == 0, result.output
    rows = read_vlmevalkit_tsv(tmp_path / "chains.tsv")
    assert [(r["index"], r["kind"], r["task_id"]) for r in rows] == [
        ("0", "itmr", "itmr-0001"), ("1", "icir", "icir-0001"), ("2", "iomr", "iomr-0001")]
    names = [name for row in rows for name in row["image_path"]]
    assert len(names) == len(set(names)) == 24  # VLMEvalKit saves all rows' images in one folder
    for row in rows:
        assert len(row["question"]) == len(row["answer"])  # ImageMTDataset asserts this
        tags = sum(q.count("<ImageHere>") for q in row["question"])
        assert tags == len(row["image"]) == len(row["image_path"])
        assert all(a.startswith("ANSWER: ") and "<ImageHere>" not in a for a in row["answer"])
    iomr = rows[2]
    assert iomr["answer"] == ["ANSWER: B", "ANSWER: C"]
    folder = EXAMPLE / "tasks" / "iomr" / "iomr-0001"
    assert base64.b64decode(iomr["image"][0]) == (folder / "start.png").read_bytes()
    assert base64.b64decode(iomr["image"][1]) == (folder / "c1.png").read_bytes()


def test_export_refuses_an_invalid_run_and_an_unknown_format(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(EXAMPLE, run)
    (run / "tasks" / "icir" / "icir-0001" / "s2_2.png").unlink()
    result = export(run, "sharegpt", tmp_path / "out.json")
    assert result.exit_code == 1 and "image file not found: s2_2.png" in result.output
    result = export(EXAMPLE, "alpaca", tmp_path / "out.json")
    assert result.exit_code == 2 and "--format: 'alpaca' is not one of sharegpt, vlmevalkit-mt" in result.output
