"""Edits make revisions that are validated first, never overwrite another person's, and survive a kill."""

from __future__ import annotations

import hashlib
import json

import imagehash
import pytest
from PIL import Image

from schemas.rules import validate_path
from schemas.task import read_task_json, task_turns
from tests.oracle_runs import make_run
from tests.vischain.review.conftest import pool_image
from vischain.review import edits as edits_module
from vischain.review.candidates import swap_candidates
from vischain.review.catalog import Catalog
from vischain.review.edits import Editor, EditRefused
from vischain.review.records import Conflict
from vischain.review.store import ReviewStore


@pytest.fixture
def review(tmp_path):
    run = make_run(tmp_path / "run", per_kind=2)
    catalog = Catalog.load(run)
    store = ReviewStore(run / "review.sqlite")
    ada, _ = store.add_reviewer("ada", "reviewer")
    return run, catalog, store, Editor(catalog, store), ada


def snapshot(run):
    return {p.relative_to(run).as_posix(): p.read_bytes() for p in (run / "tasks").rglob("*") if p.is_file()} | \
        {"provenance.jsonl": (run / "provenance.jsonl").read_bytes()}


def test_a_new_truth_is_a_new_revision_and_the_old_text_is_kept(review):
    run, catalog, store, editor, ada = review
    task_file = run / "tasks/itmr/itmr-0001/task.json"
    original = task_file.read_text()
    turn = task_turns("itmr", json.loads(original))[0]
    other = next(c.label for c in turn.choices if not c.correct)
    assert editor.change_truth(ada, "itmr", "itmr-0001", 1, turn.pointer, other) == 2
    assert task_turns("itmr", read_task_json(task_file.parent))[0].truth == other
    assert [(r.number, r.text) for r in store.revisions("itmr", "itmr-0001")] == [(1, original),
                                                                                 (2, task_file.read_text())]
    edit = store.events("itmr", "itmr-0001")[-1]
    assert (edit.action, edit.revision, edit.detail["from"], edit.detail["to"]) == ("edit", 2, turn.truth, other)
    assert store.state("itmr", "itmr-0001").revision == 2
    assert validate_path(run).problems == []


def test_an_invalid_edit_is_refused_with_the_problem_and_changes_nothing(review):
    run, catalog, store, editor, ada = review
    before = snapshot(run)
    with pytest.raises(EditRefused) as refused:
        editor.change_texts(ada, "icir", "icir-0001", 1, {"/task": "", "/steps/0/description": "Find it."})
    assert any(p.startswith("/task: ") and "non-empty" in p for p in refused.value.problems)
    assert not any(".review-" in p for p in refused.value.problems)  # the staging folder is never shown
    assert snapshot(run) == before and store.events() == [] and store.revisions("icir", "icir-0001") == []
    assert not [p for p in (run / "tasks" / "icir").iterdir() if p.name.startswith(".")]  # staging removed
    with pytest.raises(EditRefused, match="nothing changed"):
        same = read_task_json(run / "tasks/icir/icir-0001")["task"]
        editor.change_texts(ada, "icir", "icir-0001", 1, {"/task": same})
    with pytest.raises(EditRefused, match="not a text field"):
        editor.change_texts(ada, "icir", "icir-0001", 1, {"/question_start_label": "1"})


def test_the_second_of_two_edits_on_one_revision_is_a_conflict(review):
    run, catalog, store, editor, ada = review
    bob, _ = store.add_reviewer("bob", "reviewer")
    editor.change_texts(ada, "itmr", "itmr-0002", 1, {"/questions/0/question": "Ada's question?"})
    with pytest.raises(Conflict, match="you saw revision 1, it is now revision 2, saved by ada"):
        editor.change_texts(bob, "itmr", "itmr-0002", 1, {"/questions/0/question": "Bob's question?"})
    assert read_task_json(run / "tasks/itmr/itmr-0002")["questions"][0]["question"] == "Ada's question?"
    assert [e.reviewer for e in store.events()] == ["ada"]


def test_a_swap_copies_the_pool_image_and_its_provenance_line(review):
    run, catalog, store, editor, ada = review
    sha256 = pool_image(run, (30, 120, 200), "pool A", provenance=True)
    catalog = Catalog.load(run)  # provenance.jsonl has a new line
    editor = Editor(catalog, store)
    found = {c.sha256: c for c in swap_candidates(catalog, "iomr", "iomr-0001", "s1_B.png")}
    assert found[sha256].refusal is None and not found[sha256].same_slot
    editor.swap_image(ada, "iomr", "iomr-0001", 1, "/steps/0/options/1/image", found[sha256])
    folder = run / "tasks/iomr/iomr-0001"
    assert read_task_json(folder)["steps"][0]["options"][1]["image"] == "s1_B.r2.png"
    assert (folder / "s1_B.r2.png").read_bytes() == (run / "images" / f"{sha256}.png").read_bytes()
    assert (folder / "s1_B.png").is_file()  # revision 1 still names it
    line = json.loads((run / "provenance.jsonl").read_text().splitlines()[-1])
    assert (line["file"], line["sha256"], line["licence"]["id"]) == ("tasks/iomr/iomr-0001/s1_B.r2.png", sha256, "cc0")
    assert line["validator"] == {"verdict": "yes", "reason": "swapped in during review by ada", "model": "human:ada"}
    assert validate_path(run).problems == []
    # The image now in the task is no candidate any more; the one swapped out stays in the task folder
    # (revision 1 names it), which is not the pool, so it is not offered either.
    after = {c.sha256: c for c in swap_candidates(catalog, "iomr", "iomr-0001", "s1_B.r2.png")}
    old = catalog.images.key("tasks/iomr/iomr-0001/s1_B.png")
    assert sha256 not in after and old not in after  # the old image is not in the pool folder: not offered


def test_a_pool_image_without_provenance_or_with_a_refused_licence_is_not_swapped_in(review):
    run, catalog, store, editor, ada = review
    no_line = pool_image(run, (200, 160, 20), "pool B", provenance=False)
    non_commercial = pool_image(run, (90, 20, 160), "pool C", provenance=True)
    lines = (run / "provenance.jsonl").read_text().splitlines()
    last = json.loads(lines[-1])
    last["licence"] = {**last["licence"], "id": "by-nc", "version": "4.0"}
    (run / "provenance.jsonl").write_text("\n".join(lines[:-1] + [json.dumps(last)]) + "\n")
    catalog = Catalog.load(run)
    editor = Editor(catalog, store)
    before = snapshot(run)
    found = {c.sha256: c for c in swap_candidates(catalog, "itmr", "itmr-0001", "q1_b.png")}
    with pytest.raises(EditRefused, match=f"images/{no_line}.png has no provenance line"):
        editor.swap_image(ada, "itmr", "itmr-0001", 1, "/questions/0/choices/1/image", found[no_line])
    with pytest.raises(EditRefused) as refused:
        editor.swap_image(ada, "itmr", "itmr-0001", 1, "/questions/0/choices/1/image", found[non_commercial])
    assert any("by-nc" in p for p in refused.value.problems), refused.value.problems
    assert snapshot(run) == before and store.events() == []


def test_a_kill_after_the_commit_is_finished_when_the_server_starts_again(review, monkeypatch):
    run, catalog, store, editor, ada = review
    task_file = run / "tasks/itmr/itmr-0001/task.json"
    original = task_file.read_text()
    real_write = edits_module.write_atomically

    def killed_at_task_json(path, data, fsync=True):
        if path.name == "task.json":
            raise SystemExit("killed between the commit and the task.json write")
        return real_write(path, data, fsync)

    monkeypatch.setattr(edits_module, "write_atomically", killed_at_task_json)
    with pytest.raises(SystemExit):
        editor.change_texts(ada, "itmr", "itmr-0001", 1, {"/initial_scene_description": "A new scene."})
    assert task_file.read_text() == original and store.state("itmr", "itmr-0001").revision == 2
    monkeypatch.setattr(edits_module, "write_atomically", real_write)
    restarted = Editor(Catalog.load(run), ReviewStore(run / "review.sqlite"))
    assert restarted.reconcile_all() == 1
    assert read_task_json(task_file.parent)["initial_scene_description"] == "A new scene."
    assert task_file.read_text() == store.revisions("itmr", "itmr-0001")[-1].text
    assert restarted.reconcile_all() == 0 and validate_path(run).problems == []


def test_a_kill_before_the_commit_leaves_the_task_as_it_was_and_a_retry_adds_no_second_line(review, monkeypatch):
    run, catalog, store, editor, ada = review
    sha256 = pool_image(run, (30, 120, 200), "pool A", provenance=True)
    catalog = Catalog.load(run)
    editor = Editor(catalog, store)
    candidate = next(c for c in swap_candidates(catalog, "itmr", "itmr-0001", "q1_b.png") if c.sha256 == sha256)
    task_before = (run / "tasks/itmr/itmr-0001/task.json").read_bytes()

    def killed(*args, **kwargs):
        raise SystemExit("killed after the image and its provenance line, before the commit")

    with monkeypatch.context() as patch:
        patch.setattr(store, "record", killed)
        with pytest.raises(SystemExit):
            editor.swap_image(ada, "itmr", "itmr-0001", 1, "/questions/0/choices/1/image", candidate)
    assert (run / "tasks/itmr/itmr-0001/task.json").read_bytes() == task_before
    assert store.events() == [] and store.revisions("itmr", "itmr-0001") == []
    assert validate_path(run).problems == []  # a spare image and its line harm nothing
    editor.swap_image(ada, "itmr", "itmr-0001", 1, "/questions/0/choices/1/image", candidate)
    files = [json.loads(line)["file"] for line in (run / "provenance.jsonl").read_text().splitlines()]
    assert files.count("tasks/itmr/itmr-0001/q1_b.r2.png") == 1 and validate_path(run).problems == []


def test_a_near_duplicate_of_another_tasks_image_is_not_swapped_in(review):
    run, catalog, store, editor, ada = review
    with Image.open(run / "tasks/itmr/itmr-0002/q1_a.png") as image:
        copy = image.convert("RGB")
    copy.putpixel((0, 0), (1, 2, 3))  # other bytes, the same picture
    (run / "images").mkdir(exist_ok=True)
    copy.save(run / "images" / "copy.png")
    sha256 = hashlib.sha256((run / "images" / "copy.png").read_bytes()).hexdigest()
    (run / "images" / "copy.png").rename(run / "images" / f"{sha256}.png")
    line = {**json.loads((run / "provenance.jsonl").read_text().splitlines()[0]), "file": f"images/{sha256}.png",
            "sha256": sha256, "phash": str(imagehash.phash(copy))}
    with open(run / "provenance.jsonl", "a") as handle:
        handle.write(json.dumps(line) + "\n")
    catalog = Catalog.load(run)
    candidate = next(c for c in swap_candidates(catalog, "icir", "icir-0001", "s1_1.png") if c.sha256 == sha256)
    with pytest.raises(EditRefused, match="near duplicate of tasks/itmr/itmr-0002/q1_a.png"):
        Editor(catalog, store).swap_image(ada, "icir", "icir-0001", 1, "/steps/0/images/0/image", candidate)
    assert store.events() == [] and validate_path(run).problems == []


def test_a_change_made_outside_review_becomes_a_revision_and_stale_edits_conflict(review):
    run, catalog, store, editor, ada = review
    editor.change_texts(ada, "itmr", "itmr-0001", 1, {"/questions/1/question": "Reviewed?"})
    task_file = run / "tasks/itmr/itmr-0001/task.json"
    task = json.loads(task_file.read_text())
    task["questions"][1]["question"] = "Changed by hand?"
    task_file.write_text(json.dumps(task, indent=2) + "\n")
    with pytest.raises(Conflict, match="it is now revision 3, saved by a change outside review"):
        editor.change_texts(ada, "itmr", "itmr-0001", 2, {"/questions/1/question": "Again?"})
    assert [r.number for r in store.revisions("itmr", "itmr-0001")] == [1, 2, 3]
    assert store.events("itmr", "itmr-0001")[-1].action == "external"
    assert read_task_json(task_file.parent)["questions"][1]["question"] == "Changed by hand?"
