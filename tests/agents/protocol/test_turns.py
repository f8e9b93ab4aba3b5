"""The evaluation protocol: labels, scripts, answer parsing, turn-by-turn history.

Also home of the helpers the other eval/verify tests import: `make_run` (a valid run with several
tasks of each kind, copied from the example run) and `Oracle` (a scripted OpenAI-compatible
server that recognises each question by its labelled candidate images and answers as told).
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from PIL import Image

from agents.backends.openai_client import OpenAIBackend
from agents.protocol.labels import LABEL_MIN_PX, label_px, labelled_image
from agents.protocol.prompts import PROMPTS, prompt_hash
from agents.protocol.turns import converse, parse_answer, task_script
from schemas.task import TaskItem, load_tasks
from tests.oracle_runs import EXAMPLE, Oracle


def play(server_url: str, item: TaskItem, labels_dir: Path, history: str = "model", model: str = "m"):
    async def run():
        client = OpenAIBackend(model, server_url)
        try:
            return [a async for a in converse(client, task_script(item), labels_dir=labels_dir, history=history)]
        finally:
            await client.aclose()
    return asyncio.run(run())


# ---- labels ------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [(40, 30), (96, 96), (1000, 600)])
def test_the_label_is_drawn_top_left_on_a_black_box_scaled_to_the_image(tmp_path, size):
    source = tmp_path / "grey.png"
    Image.new("RGB", size, (128, 128, 128)).save(source)
    with Image.open(labelled_image(source, "3", tmp_path / "labels")) as out:
        pixels = out.convert("RGB").load()
        assert pixels[0, 0] == (0, 0, 0)                      # the box starts in the corner
        box = [(x, y) for x in range(out.width // 2) for y in range(out.height // 2) if pixels[x, y] != (128, 128, 128)]
        height = max(y for _, y in box) + 1
        assert height >= label_px(*size) >= max(LABEL_MIN_PX, 0.12 * min(size) - 1)
        assert any(min(pixels[x, y]) > 200 for x, y in box)   # white strokes of the digit (anti-aliased)
        assert pixels[out.width - 1, out.height - 1] == (128, 128, 128)  # the rest is untouched


def test_labelled_copies_are_content_addressed_and_keep_jpeg(tmp_path):
    Image.new("RGB", (80, 60), (10, 200, 10)).save(tmp_path / "a.jpg", quality=90)
    first = labelled_image(tmp_path / "a.jpg", "A", tmp_path / "labels")
    assert first.suffix == ".jpg" and labelled_image(tmp_path / "a.jpg", "A", tmp_path / "labels") == first
    assert labelled_image(tmp_path / "a.jpg", "B", tmp_path / "labels") != first
    shutil.copy(tmp_path / "a.jpg", tmp_path / "same-bytes.jpg")
    assert labelled_image(tmp_path / "same-bytes.jpg", "A", tmp_path / "labels") == first


# ---- scripts and parsing -----------------------------------------------------------------------

def test_scripts_of_each_kind_label_and_order_the_candidates():
    items = {item.kind: item for item in load_tasks(EXAMPLE)}
    assert {k: i.task_id for k, i in items.items()} == {"itmr": "itmr-0001", "icir": "icir-0001", "iomr": "iomr-0001"}
    assert all(item.domain == "engineering" for item in items.values())
    itmr = task_script(items["itmr"])
    assert [q.truth for q in itmr.questions] == ["1", "2"]
    assert [c[0] for c in itmr.questions[0].choices] == ["1", "2", "3"]
    icir = task_script(items["icir"])
    assert [e.truth for e in icir.examples] == ["1", "2"] and [q.truth for q in icir.questions] == ["3"]
    iomr = task_script(items["iomr"])
    assert [q.truth for q in iomr.questions] == ["B", "C"] and iomr.label_kind == "letter"
    assert [Path(v).name for kind, v in iomr.questions[0].parts if kind == "image"] == ["start.png", "c1.png"]
    assert [Path(v).name for kind, v in iomr.questions[1].parts if kind == "image"] == ["c2.png"]


@pytest.mark.parametrize("reply, labels, expected", [
    ("ANSWER: 2", ["1", "2", "3"], "2"),
    ("Maybe ANSWER: 1, no wait.\nANSWER: 3", ["1", "2", "3"], "3"),
    ("answer: [b]", ["A", "B", "C"], "B"),
    ("**ANSWER:** 12", [str(i) for i in range(1, 13)], "12"),
    ("ANSWER: 7", ["1", "2", "3"], None),          # not a label that was shown
    ("ANSWER: B", ["1", "2", "3"], None),          # a letter where numbers are asked
    ("ANSWER: Apple", ["A", "B"], None),           # a word, not a letter label
    ("I pick the second one, 2.", ["1", "2"], None),
    ("", ["A", "B"], None),
])
def test_parse_answer_takes_the_last_valid_label(reply, labels, expected):
    assert parse_answer(reply, labels) == expected


def test_the_prompt_hash_is_a_sha256_of_the_prompt_texts(monkeypatch):
    digest = prompt_hash()
    assert len(digest) == 64 and digest == prompt_hash()
    monkeypatch.setitem(PROMPTS, "itmr_intro", PROMPTS["itmr_intro"] + " Think.")
    assert prompt_hash() != digest


# ---- turn by turn ------------------------------------------------------------------------------

def _assistant_turns(body: dict) -> list[str]:
    return [m["content"][0]["text"] for m in body["messages"] if m["role"] == "assistant"]


@pytest.mark.parametrize("history, expected_second_turn_history", [("model", "ANSWER: 2"), ("gold", "ANSWER: 1")])
def test_later_turns_see_the_model_reply_or_the_truth(tmp_path, history, expected_second_turn_history):
    item = next(i for i in load_tasks(EXAMPLE) if i.kind == "itmr")
    with Oracle([item], tmp_path / "labels", policy=lambda m, t, q: "wrong" if q == 1 else "chatty") as oracle:
        answers = play(oracle.server.base_url, item, tmp_path / "labels", history)
    assert [(a.label, a.correct, a.format_error) for a in answers] == [("2", False, False), ("2", True, False)]
    assert _assistant_turns(oracle.bodies[1]) == [expected_second_turn_history]
    first_turn = oracle.bodies[0]["messages"][0]["content"]
    assert first_turn[0]["text"].startswith(PROMPTS["itmr_intro"][:30])
    assert [p["type"] for p in first_turn].count("image_url") == 3 and "ANSWER: <number>" in first_turn[-1]["text"]


def test_stop_on_error_skips_the_rest_of_the_task(tmp_path):
    item = next(i for i in load_tasks(EXAMPLE) if i.kind == "iomr")
    with Oracle([item], tmp_path / "labels", policy=lambda m, t, q: "format") as oracle:
        answers = play(oracle.server.base_url, item, tmp_path / "labels", "stop_on_error")
    assert len(oracle.bodies) == 1
    assert [(a.format_error, a.skipped, a.reply is None) for a in answers] == [(True, False, False),
                                                                              (False, True, True)]


def test_icir_shows_the_steps_before_question_start_as_solved_examples(tmp_path):
    item = next(i for i in load_tasks(EXAMPLE) if i.kind == "icir")
    with Oracle([item], tmp_path / "labels") as oracle:
        answers = play(oracle.server.base_url, item, tmp_path / "labels")
    assert [(a.question, a.label, a.correct) for a in answers] == [(1, "3", True)]
    messages = oracle.bodies[0]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    assert _assistant_turns(oracle.bodies[0]) == ["ANSWER: 1", "ANSWER: 2"]


def test_icir_without_text_shows_no_task_statement_and_no_step_descriptions():
    item = next(i for i in load_tasks(EXAMPLE) if i.kind == "icir")
    words = task_script(item, icir_text="full")
    image_only = task_script(item)  # the default: the paper's "without any text instruction"
    assert item.task["task"] in words.intro and item.task["task"] not in image_only.intro
    assert image_only.intro == PROMPTS["icir_intro_image_only"]
    for full, bare in zip(words.examples + words.questions, image_only.examples + image_only.questions):
        assert [kind for kind, _ in full.parts] == ["text"] and bare.parts == ()
        assert (full.choices, full.truth) == (bare.choices, bare.truth)  # the same images and answers
    descriptions = [step["description"] for step in item.task["steps"]]
    assert all(d in "".join(v for q in words.questions + words.examples for _, v in q.parts) for d in descriptions)
    others = [i for i in load_tasks(EXAMPLE) if i.kind != "icir"]
    assert all(task_script(i, icir_text="none") == task_script(i, icir_text="full") for i in others)
    with pytest.raises(ValueError, match="icir_text: 'some' is not one of none, full"):
        task_script(item, icir_text="some")
