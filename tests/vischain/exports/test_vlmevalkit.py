"""`--format vlmevalkit-mt` against what VLMEvalKit does with it. VLMEvalKit is not on PyPI, so its
steps are restated here from its source (open-compass/VLMEvalKit at e8e78f05):

- `vlmeval.smp.load` reads a .tsv with `pandas.read_csv(path, sep="\\t")`;
- `ImageBaseDataset.__init__` turns each list cell into a list with `toliststr` (a cell that starts with
  "[" and ends with "]" is evaluated as a Python literal), and a one-item list into its item;
- `dump_image` decodes each base64 image to `img_root/<image_path item>` (RGB when RGBA, P or LA);
- `ImageMTDataset.build_prompt` asserts len(question) == len(answer), splits each question on
  `<ImageHere>` into text and image parts (empty texts dropped, images taken in order across the
  turns), asserts no `<ImageHere>` in an answer, and alternates user and assistant messages.

The class file we ship imports vlmeval, so its scoring functions are read from its source and run
here without it.
"""

import ast
import base64
import io
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from agents.protocol.turns import parse_answer
from vischain.exports.vlmevalkit import CLASS_FILE

MARKER = "<ImageHere>"


def to_list(cell) -> list[str]:
    """toliststr: a bracketed string is a Python literal list; any other string is a one-item list."""
    if isinstance(cell, str) and len(cell) > 1 and cell[0] == "[" and cell[-1] == "]":
        return [str(x) for x in ast.literal_eval(cell)]
    return [cell] if isinstance(cell, str) else [str(x) for x in cell]


def load_rows(tsv: Path) -> pd.DataFrame:
    data = pd.read_csv(tsv, sep="\t")
    data["image"] = [(lambda x: x[0] if len(x) == 1 else x)(to_list(str(cell))) for cell in data["image"]]
    data["image_path"] = [(lambda x: x[0] if len(x) == 1 else x)(to_list(cell)) for cell in data["image_path"]]
    return data


def dump_images(line, img_root: Path) -> list[Path]:
    images = line["image"] if isinstance(line["image"], list) else [line["image"]]
    names = line["image_path"] if isinstance(line["image_path"], list) else [line["image_path"]]
    paths = []
    for encoded, name in zip(images, names):
        path = img_root / name
        if not path.exists():
            image = Image.open(io.BytesIO(base64.b64decode(encoded)))
            image = image.convert("RGB") if image.mode in ("RGBA", "P", "LA") else image
            image.save(path)
        paths.append(path)
    return paths


def build_prompt(line, img_root: Path) -> list[dict]:
    paths = dump_images(line, img_root)
    questions, answers = to_list(line["question"]), to_list(line["answer"])
    assert len(questions) == len(answers)
    dialogue, used = [], 0
    for question, answer in zip(questions, answers):
        pieces = question.split(MARKER)
        content = []
        for i, text in enumerate(pieces):
            if text:
                content.append({"type": "text", "value": text})
            if i < len(pieces) - 1:
                content.append({"type": "image", "value": str(paths[used])})
                used += 1
        dialogue.append({"role": "user", "content": content})
        assert MARKER not in answer
        dialogue.append({"role": "assistant", "content": [{"type": "text", "value": answer}]})
    assert used == len(paths)  # every image placed, none left over
    return dialogue


@pytest.fixture(scope="module")
def folder(exported):
    return exported("vlmevalkit-mt")


def test_every_row_builds_a_prompt_with_its_images_at_their_turns(folder, exported, tmp_path):
    data = load_rows(next(folder.glob("*.tsv")))
    conversations = {(r["kind"], r["task_id"]): r for r in
                     map(json.loads, (exported("jsonl-messages") / "conversations.jsonl").open())}
    for _, line in data.iterrows():
        dialogue = build_prompt(line, tmp_path)
        record = conversations[(line["kind"], line["task_id"])]
        asked = [m for m, t in zip(record["messages"][::2], record["turns"]) if not t["example"]]
        assert [m["role"] for m in dialogue] == ["user", "assistant"] * len(asked)
        # The same images in the same order as the conversation (ICIR examples folded into turn 1).
        shown = [Path(p["value"]) for m in dialogue[::2] for p in m["content"] if p["type"] == "image"]
        expected = [exported("jsonl-messages") / p["path"] for m in record["messages"][::2] for p in m["content"]
                    if p["type"] == "image"]
        assert [Image.open(p).convert("RGB").tobytes() for p in shown] == \
               [Image.open(p).convert("RGB").tobytes() for p in expected]
        assert [m["content"][0]["value"] for m in dialogue[1::2]] == [f"ANSWER: {t['truth']}" for t in record["turns"]
                                                                       if not t["example"]]


def test_image_names_are_unique_across_rows(folder):
    data = load_rows(next(folder.glob("*.tsv")))
    names = [name for cell in data["image_path"] for name in (cell if isinstance(cell, list) else [cell])]
    images = [image for cell in data["image"] for image in (cell if isinstance(cell, list) else [cell])]
    assert len(set(names)) == len(set(images))  # one name per distinct image, so no file stands for two


def shipped_functions(path: Path) -> dict:
    """parse_answer and score_rows from the shipped class file, run without vlmeval installed."""
    tree = ast.parse(path.read_text())
    wanted = [node for node in tree.body if isinstance(node, ast.FunctionDef)
              and node.name in ("parse_answer", "score_rows")]
    namespace = {"re": re, "pd": pd}
    exec(compile(ast.Module(body=wanted, type_ignores=[]), str(path), "exec"), namespace)
    return namespace


REPLIES = ["ANSWER: 2", "answer: [3]", "I think ANSWER: 1 ... no, ANSWER: 2", "ANSWER: 9", "ANSWER: B", "B", "",
           "ANSWER: b", "ANSWER: 02", "ANSWER: C."]


def test_the_shipped_scoring_parses_replies_as_the_protocol_does(folder):
    shipped = shipped_functions(folder / CLASS_FILE)
    for labels in (["1", "2", "3"], ["A", "B", "C"]):
        for reply in REPLIES:
            assert shipped["parse_answer"](reply, labels) == parse_answer(reply, labels), reply
    scores = shipped["score_rows"]([
        ("itmr", ["ANSWER: 1", "ANSWER: 2"], [["1", "2"], ["1", "2"]], ["1", "2"]),   # all right
        ("itmr", ["ANSWER: 1", "no idea"], [["1", "2"], ["1", "2"]], ["1", "2"]),     # one format error
        ("iomr", ["ANSWER: A"], [["A", "B"]], ["B"]),                                 # wrong
    ]).set_index("scope")
    assert scores.loc["overall", "CA"] == pytest.approx(3 / 5)
    assert scores.loc["overall", "TC"] == pytest.approx(1 / 3)
    assert scores.loc["overall", "format_error_rate"] == pytest.approx(1 / 5)
    assert scores.loc["itmr", "TC"] == 0.5 and scores.loc["iomr", "CA"] == 0
