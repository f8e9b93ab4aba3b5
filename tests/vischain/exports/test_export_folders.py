"""`vischain export`: what every format shares. The conversations are the ones `vischain eval` plays,
every `.jsonl` is JSON Lines that `datasets` loads, and every folder stands on its own."""

import asyncio
import hashlib
import json
import shutil
from pathlib import Path

import pytest
from datasets import load_dataset

from agents.backends.chat import ChatResult
from agents.protocol.turns import converse, task_script
from schemas.task import load_tasks, task_turns
from tests.vischain.exports.conftest import SOURCE_RUN, run_export
from vischain.exports import FORMATS

IMAGE_FORMATS = ("trl", "llamafactory", "lmms-eval", "jsonl-messages")


class GoldRecorder:
    """A model that records every conversation it is sent (replies do not matter under history=gold)."""

    backend, model_id = "test", "recorder"

    def __init__(self):
        self.calls: list[list[dict]] = []

    async def chat(self, messages, *, schema=None, params=None):
        self.calls.append(json.loads(json.dumps(messages)))
        return ChatResult(text="no answer", model=self.model_id)


async def played_by_eval(item, labels_dir: Path) -> list[dict]:
    """The last conversation `vischain eval --history gold` sends for a task (every turn but the last reply)."""
    model = GoldRecorder()
    async for _ in converse(model, task_script(item), labels_dir=labels_dir, history="gold"):
        pass
    return model.calls[-1]


def comparable(messages: list[dict], root: Path) -> list[tuple]:
    """Roles, texts, and each image by its bytes (`root` / path: eval's paths are absolute)."""
    out = []
    for message in messages:
        content = message["content"]
        parts = [("text", content)] if isinstance(content, str) else [
            ("image", hashlib.sha256((root / part["path"]).read_bytes()).hexdigest()) if part["type"] == "image"
            else ("text", part["text"]) for part in content]
        out.append((message["role"], tuple(parts)))
    return out


def test_every_format_is_the_conversation_vischain_eval_plays(exported, tmp_path):
    folder = exported("jsonl-messages")
    records = {(r["kind"], r["task_id"]): r for r in map(json.loads, (folder / "conversations.jsonl").open())}
    items = load_tasks(SOURCE_RUN)
    assert set(records) == {(item.kind, item.task_id) for item in items}
    for item in items:
        sent = asyncio.run(played_by_eval(item, tmp_path / "labels"))
        exported_messages = records[(item.kind, item.task_id)]["messages"][:-1]  # the last gold reply is never sent
        assert comparable(exported_messages, folder) == comparable(sent, Path("/"))


def test_labels_and_truth_are_the_protocols_icir_positions_not_image_ids(exported):
    folder = exported("jsonl-messages")
    for record in map(json.loads, (folder / "conversations.jsonl").open()):
        item = next(i for i in load_tasks(SOURCE_RUN) if (i.kind, i.task_id) == (record["kind"], record["task_id"]))
        turns = task_turns(item.kind, item.task)
        assert [t["truth"] for t in record["turns"]] == [turn.truth for turn in turns]
        assert [t["labels"] for t in record["turns"]] == [[c.label for c in turn.choices] for turn in turns]
        assert [m["content"][0]["text"] for m in record["messages"][1::2]] == [f"ANSWER: {t.truth}" for t in turns]
        if item.kind == "icir":
            assert [t["example"] for t in record["turns"]] == [turn.example for turn in turns]
            assert all(t["labels"] == [str(i) for i in range(1, len(t["labels"]) + 1)] for t in record["turns"])


@pytest.mark.parametrize("fmt", IMAGE_FORMATS)
def test_a_folder_moved_elsewhere_still_has_every_image_it_names(exported, tmp_path, fmt):
    moved = tmp_path / "moved"
    shutil.copytree(exported(fmt), moved)
    text = "".join(p.read_text() for p in moved.glob("*.jsonl"))
    assert str(SOURCE_RUN) not in text and "/tmp" not in text  # no absolute path
    named = set()
    for line in text.splitlines():
        row = json.loads(line)
        named |= {p for p in row.get("images", []) + row.get("file_names", [])}
        named |= {part["path"] for m in row.get("messages", []) if isinstance(m["content"], list)
                  for part in m["content"] if part.get("path")}
    assert named and all(not Path(p).is_absolute() and (moved / p).is_file() for p in named)
    assert (moved / "README.md").is_file()


@pytest.mark.parametrize("fmt", IMAGE_FORMATS)
def test_every_jsonl_file_is_json_lines_that_datasets_loads(exported, fmt):
    files = sorted(exported(fmt).glob("*.jsonl"))
    assert files
    for path in files:
        lines = path.read_text(encoding="utf-8").splitlines()
        rows = [json.loads(line) for line in lines]  # one object per line, no pretty-printed array
        assert rows and all(isinstance(row, dict) for row in rows)
        dataset = load_dataset("json", data_files=str(path), split="train")
        assert len(dataset) == len(rows)


def test_the_vlmevalkit_tsv_loads_with_datasets(exported):
    tsv = next(exported("vlmevalkit-mt").glob("*.tsv"))
    dataset = load_dataset("csv", data_files=str(tsv), delimiter="\t", split="train")
    assert len(dataset) == len(load_tasks(SOURCE_RUN))


def test_the_default_folder_is_inside_the_run(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(SOURCE_RUN, run)
    result = run_export(run, "jsonl-messages")
    assert result.exit_code == 0, result.output
    assert (run / "exports" / "jsonl-messages" / "conversations.jsonl").is_file()
    again = run_export(run, "jsonl-messages")  # never mixed with what is there
    assert again.exit_code == 2 and "exists and is not an empty folder" in again.output


def test_a_marker_in_the_task_text_is_refused_naming_the_file(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(SOURCE_RUN, run)
    item = next(i for i in load_tasks(run) if i.kind == "itmr")
    item.task["questions"][0]["question"] = "Which part (see <image>) replaces the gear?"
    (item.folder / "task.json").write_text(json.dumps(item.task))
    result = run_export(run, "trl", tmp_path / "out")
    assert result.exit_code == 2
    assert f"{item.folder / 'task.json'}: the text contains '<image>'" in result.output
    assert not (tmp_path / "out").exists()


def test_an_invalid_run_and_an_unknown_format_are_refused(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(SOURCE_RUN, run)
    item = next(i for i in load_tasks(run) if i.kind == "icir")
    (item.folder / item.task["steps"][0]["images"][0]["image"]).unlink()
    result = run_export(run, "trl", tmp_path / "out")
    assert result.exit_code == 1 and "refusing a run that fails validation" in result.output
    result = run_export(SOURCE_RUN, "sharegpt", tmp_path / "out")
    assert result.exit_code == 2 and f"--format: 'sharegpt' is not one of {', '.join(FORMATS)}" in result.output
