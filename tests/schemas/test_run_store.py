import json
import os

import pytest

from benchmark_data import EXAMPLE_RUN
from schemas.run_store import RunStore
from schemas.schema_check import SchemaViolation

EXAMPLE = EXAMPLE_RUN


def example_task(kind):
    folder = EXAMPLE / "tasks" / kind / f"{kind}-0001"
    task = json.loads((folder / "task.json").read_text())
    images = {p.name: p for p in folder.glob("*.png")}
    extra = {"plan.json": json.loads((folder / "plan.json").read_text())} if (folder / "plan.json").exists() else None
    return task, images, extra


@pytest.mark.parametrize("kind", ["itmr", "icir", "iomr"])
def test_tasks_round_trip_through_the_store(tmp_path, kind):
    store = RunStore.create(tmp_path / "run", config={"domain": "engineering"}, seed=3)
    task, images, extra = example_task(kind)
    folder = store.write_task(kind, "t1", task, images, extra)
    assert json.loads((folder / "task.json").read_text()) == task
    assert {p.name for p in folder.glob("*.png")} == set(images)
    if extra:
        assert json.loads((folder / "plan.json").read_text()) == extra["plan.json"]
    reopened = RunStore.open(tmp_path / "run")
    assert [(r.kind, r.task_id) for r in reopened.tasks()] == [(kind, "t1")]
    assert reopened.refresh_counts()[kind] == 1 and reopened.run["seed"] == 3


def test_provenance_and_failures_round_trip(tmp_path):
    store = RunStore.create(tmp_path / "run", config={})
    lines = [json.loads(line) for line in (EXAMPLE / "provenance.jsonl").read_text().splitlines()[:3]]
    store.append_provenance(lines)
    store.append_failure({"task_id": "t9", "kind": "itmr", "topic": "gears", "stage": "fetch", "reason": "no image"})
    assert store.read_jsonl("provenance.jsonl") == lines
    failure = store.read_jsonl("failures.jsonl")[0]
    assert failure["stage"] == "fetch" and failure["reason"] == "no image" and "time" in failure


def test_a_crash_during_a_task_write_leaves_nothing(tmp_path, monkeypatch):
    store = RunStore.create(tmp_path / "run", config={})
    task, images, _ = example_task("itmr")

    def crash(*args):
        raise OSError("killed between the temporary write and the rename")

    monkeypatch.setattr(os, "rename", crash)
    with pytest.raises(OSError, match="killed"):
        store.write_task("itmr", "t1", task, images)
    assert list((tmp_path / "run" / "tasks" / "itmr").iterdir()) == []
    assert store.tasks() == []


def test_an_invalid_task_is_refused_before_anything_is_written(tmp_path):
    store = RunStore.create(tmp_path / "run", config={})
    task, images, _ = example_task("itmr")
    del task["questions"][0]["choices"]
    with pytest.raises(SchemaViolation, match=r"itmr/t1/task.json#/questions/0: 'choices' is a required property"):
        store.write_task("itmr", "t1", task, images)
    assert not (tmp_path / "run" / "tasks" / "itmr").exists()


def test_a_task_is_never_overwritten(tmp_path):
    store = RunStore.create(tmp_path / "run", config={})
    task, images, _ = example_task("iomr")
    store.write_task("iomr", "t1", task, images)
    with pytest.raises(FileExistsError):
        store.write_task("iomr", "t1", task, images)


def test_a_torn_last_line_is_cut_and_earlier_lines_survive(tmp_path):
    store = RunStore.create(tmp_path / "run", config={})
    store.append_failure({"task_id": "t1", "stage": "plan", "reason": "a"})
    with open(tmp_path / "run" / "failures.jsonl", "a") as handle:
        handle.write('{"task_id": "t2", "sta')  # power lost mid-line
    reopened = RunStore.open(tmp_path / "run")
    assert [line["task_id"] for line in reopened.read_jsonl("failures.jsonl")] == ["t1"]
    reopened.append_failure({"task_id": "t3", "stage": "plan", "reason": "b"})
    assert [line["task_id"] for line in reopened.read_jsonl("failures.jsonl")] == ["t1", "t3"]


def test_run_json_records_config_versions_and_counts(tmp_path):
    store = RunStore.create(tmp_path / "run", config={"domain": "daily", "tasks": 4}, seed=11)
    run = store.run
    assert run["config"] == {"domain": "daily", "tasks": 4}
    assert "transformers" in run["versions"] and "python" in run["versions"]
    assert run["counts"] == {"itmr": 0, "icir": 0, "iomr": 0, "failures": 0, "images": 0}
    with pytest.raises(FileExistsError):
        RunStore.create(tmp_path / "run", config={})


def test_opening_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a run folder"):
        RunStore.open(tmp_path)
