import json
import shutil

import pytest

from benchmark_data import EXAMPLE_RUN
from schemas.licences import LicencePolicy
from schemas.rules import task_problems
from schemas.run_store import RunStore
from schemas.schema_check import SCHEMA_DIR, SchemaViolation, load_schema, require, schema_problems

EXAMPLE = EXAMPLE_RUN


@pytest.fixture
def run(tmp_path):
    """A writable copy of the shipped example run."""
    shutil.copytree(EXAMPLE, tmp_path / "run")
    return tmp_path / "run"


def folder(run, kind):
    return run / "tasks" / kind / f"{kind}-0001"


def problems_after(run, kind, edit):
    path = folder(run, kind) / "task.json"
    task = json.loads(path.read_text())
    edit(task)
    path.write_text(json.dumps(task))
    store = RunStore.open(run)
    return task_problems(folder(run, kind), store.provenance_by_file(), run)


@pytest.mark.parametrize("kind", ["itmr", "icir", "iomr"])
def test_the_example_task_of_each_kind_is_valid(run, kind):
    assert task_problems(folder(run, kind), RunStore.open(run).provenance_by_file(), run) == []


def set_in(path_keys, value):
    def edit(task):
        target = task
        for key in path_keys[:-1]:
            target = target[key]
        target[path_keys[-1]] = value
    return edit


BROKEN = [
    ("itmr", set_in(["questions", 0, "choices", 1, "correct"], True), "/questions/0/choices", "exactly one choice"),
    ("itmr", set_in(["questions", 1, "choices", 1, "correct"], False), "/questions/1/choices", "found 0"),
    ("itmr", set_in(["questions", 1, "original_id"], "1"), "/questions/1/original_id", "duplicate label"),
    ("itmr", set_in(["questions", 0, "question"], 7), "/questions/0/question", "is not of type 'string'"),
    ("icir", set_in(["steps", 0, "answer_label"], 9), "/steps/0/answer_label", "names no image"),
    ("icir", set_in(["steps", 1, "images", 2, "image_id"], 1), "/steps/1/images/2/image_id", "duplicate label"),
    ("icir", set_in(["question_start_label"], 8), "/question_start_label", "names no step"),
    ("iomr", set_in(["steps", 0, "correct_option"], "D"), "/steps/0/correct_option", "names no option"),
    ("iomr", set_in(["steps", 1, "options", 1, "option"], "A"), "/steps/1/options/1/option", "duplicate label"),
    ("iomr", set_in(["steps", 0, "condition"], "missing.png"), "/steps/0/condition", "image file not found"),
]


@pytest.mark.parametrize("kind,edit,pointer,message", BROKEN)
def test_each_rule_names_the_file_and_the_json_pointer(run, kind, edit, pointer, message):
    problems = problems_after(run, kind, edit)
    assert problems, "the broken copy passed"
    assert problems[0].file.endswith(f"tasks/{kind}/{kind}-0001/task.json")
    assert problems[0].pointer == pointer and message in problems[0].message


def test_an_image_that_does_not_decode(run):
    (folder(run, "itmr") / "q1_b.png").write_bytes(b"<html>not an image</html>")
    problems = task_problems(folder(run, "itmr"), RunStore.open(run).provenance_by_file(), run)
    assert [(p.pointer, "does not decode" in p.message) for p in problems] == [("/questions/0/choices/1/image", True)]



@pytest.mark.parametrize("decode", [True, False])
def test_an_image_swapped_for_another_fails_its_provenance_hash(run, decode):
    """Both files decode; only the hash tells that q1_a.png now holds q1_b.png's picture."""
    task = folder(run, "itmr")
    (task / "q1_a.png").write_bytes((task / "q1_b.png").read_bytes())
    problems = task_problems(task, RunStore.open(run).provenance_by_file(), run, decode=decode)
    assert [(p.pointer, "do not match the provenance sha256" in p.message) for p in problems] == [
        ("/questions/0/choices/0/image", True)]

def rewrite_provenance(run, change):
    path = run / "provenance.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    lines = [change(line) if line["file"].endswith("itmr-0001/q1_c.png") else line for line in lines]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines if line is not None))


@pytest.mark.parametrize("change,message", [
    (lambda line: None, "no provenance line for tasks/itmr/itmr-0001/q1_c.png"),
    (lambda line: {**line, "licence": {**line["licence"], "id": "by-nc"}}, "licence by-nc not allowed"),
    (lambda line: {**line, "licence": {**line["licence"], "verified": False}}, "unverified licence"),
    (lambda line: {**line, "licence": None}, "licence unknown"),
])
def test_every_image_needs_provenance_with_an_allowed_licence(run, change, message):
    rewrite_provenance(run, change)
    problems = task_problems(folder(run, "itmr"), RunStore.open(run).provenance_by_file(), run)
    assert len(problems) == 1
    assert problems[0].pointer == "/questions/0/choices/2/image" and message in problems[0].message


def test_painted_images_need_no_licence_and_policy_widens_on_request(run):
    painted = {"provider": "painter", "licence": None, "synthetic": True,
               "generator": {"model": "tiny:sd", "seed": 3, "prompt": "a clear photo of a gear"}}
    rewrite_provenance(run, lambda line: {**line, **painted})
    assert task_problems(folder(run, "itmr"), RunStore.open(run).provenance_by_file(), run) == []
    rewrite_provenance(run, lambda line: {**line, "synthetic": False,
                                          "licence": {"id": "by-nc", "url": None, "verified": False}})
    wide = LicencePolicy(allow=("cc0", "by-nc"), accept_unverified=True)
    assert task_problems(folder(run, "itmr"), RunStore.open(run).provenance_by_file(), run, wide) == []


@pytest.mark.parametrize("change, reason", [
    ({}, "its provider is 'drawn', not the painter"),
    ({"provider": "painter"}, "without its generator"),
    ({"provider": "painter", "generator": {"model": "tiny:sd", "seed": "3", "prompt": "x"}}, "generator.seed"),
    ({"provider": "painter", "generator": {"model": "", "seed": 3, "prompt": "x"}}, "generator.model"),
    ({"provider": "painter", "generator": {"model": "m", "seed": 3, "prompt": "x"},
      "licence": {"id": "cc0", "url": None, "verified": True}}, "carries a retrieved image's licence"),
])
def test_synthetic_alone_admits_nothing_the_painter_did_not_make(run, change, reason):
    rewrite_provenance(run, lambda line: {**line, "licence": None, "synthetic": True, **change})
    problems = task_problems(folder(run, "itmr"), RunStore.open(run).provenance_by_file(), run)
    assert problems and any(reason in p.message for p in problems)


def test_every_schema_is_valid_draft_2020_12():
    import jsonschema

    for path in SCHEMA_DIR.glob("*.schema.json"):
        jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text()))


def test_require_raises_with_file_and_pointer():
    with pytest.raises(SchemaViolation, match=r"failures.jsonl#/stage: '' should be non-empty"):
        require("failure", {"task_id": "t1", "stage": "", "reason": "x"}, "failures.jsonl")
    assert schema_problems("failure", {"task_id": "t1", "stage": "plan", "reason": "bad JSON"}) == []


def test_unknown_schema_lists_the_known_ones():
    with pytest.raises(KeyError, match="known: failure, icir"):
        load_schema("nope")
