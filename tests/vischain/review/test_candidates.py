"""Swap candidates: unused pool images, the slot's own fetched images first, their provenance from the
generate checkpoints when provenance.jsonl has no line for them."""

from __future__ import annotations

import json
from typing import TypedDict

import imagehash
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from PIL import Image

from tests.oracle_runs import make_run
from tests.vischain.review.conftest import pool_image
from vischain.review.candidates import slot_key, swap_candidates
from vischain.review.catalog import Catalog
from vischain.review.edits import Editor
from vischain.review.store import ReviewStore


class State(TypedDict, total=False):
    slots: list[dict]


def checkpoint_slots(run, task_id: str, slots_per_round: list[list[dict]]) -> None:
    """A generate-like thread in RUN/state.sqlite: one graph step per round, each leaving `slots` in its checkpoint."""
    graph = StateGraph(State)
    names = [f"round{i}" for i in range(len(slots_per_round))]
    for name, slots in zip(names, slots_per_round):
        graph.add_node(name, lambda state, slots=slots: {"slots": slots})
    for a, b in zip([START, *names], [*names, END]):
        graph.add_edge(a, b)
    with SqliteSaver.from_conn_string(str(run / "state.sqlite")) as saver:
        graph.compile(checkpointer=saver).invoke({"slots": []}, {"configurable": {"thread_id": task_id}})


def test_the_slots_own_fetched_images_come_first_with_the_checkpoints_provenance(tmp_path):
    run = make_run(tmp_path / "run")
    other = pool_image(run, (200, 160, 20), "pool B", provenance=False)
    own = pool_image(run, (30, 120, 200), "pool A", provenance=False)
    line = json.loads((run / "provenance.jsonl").read_text().splitlines()[0])
    with Image.open(run / "images" / f"{own}.png") as image:
        phash = str(imagehash.phash(image))
    fetched = {**line, "file": f"images/{own}.png", "sha256": own, "phash": phash}
    kept = [{"file": f"images/{own}.png", "sha256": own, "phash": phash, "provenance": fetched,
             "url": "https://example.org/a.png"}]
    checkpoint_slots(run, "itmr-0001", [
        [{"key": "q1_b", "kept": kept, "image": None}, {"key": "q1_c", "kept": [], "image": None}],
        [{"key": "q1_b", "kept": [], "image": None}, {"key": "q1_c", "kept": [], "image": None}],
    ])
    catalog = Catalog.load(run)
    found = swap_candidates(catalog, "itmr", "itmr-0001", "q1_b.png")
    assert [(c.sha256, c.same_slot) for c in found] == [(own, True), (other, False)]
    assert found[0].provenance == fetched and found[0].refusal is None
    assert found[1].refusal and "no provenance line" in found[1].refusal
    # Another slot of the same task sees the image as an ordinary unused one, its line still known.
    for_c = {c.sha256: c for c in swap_candidates(catalog, "itmr", "itmr-0001", "q1_c.r3.png")}
    assert not for_c[own].same_slot and for_c[own].provenance == fetched

    store = ReviewStore(run / "review.sqlite")
    ada, _ = store.add_reviewer("ada", "reviewer")
    Editor(catalog, store).swap_image(ada, "itmr", "itmr-0001", 1, "/questions/0/choices/1/image", found[0])
    added = json.loads((run / "provenance.jsonl").read_text().splitlines()[-1])
    assert added["file"] == "tasks/itmr/itmr-0001/q1_b.r2.png" and added["source_url"] == fetched["source_url"]


def test_an_unreadable_checkpoint_file_only_loses_the_slot_link(tmp_path):
    run = make_run(tmp_path / "run")
    pool_image(run, (30, 120, 200), "pool A", provenance=True)
    (run / "state.sqlite").write_bytes(b"not a database")
    found = swap_candidates(Catalog.load(run), "itmr", "itmr-0001", "q1_b.png")
    assert len(found) == 1 and not found[0].same_slot and found[0].refusal is None


def test_the_slot_of_a_swapped_image_is_its_name_before_the_revision_suffix():
    assert [slot_key(n) for n in ("q1_b.png", "q1_b.r2.jpg", "start.png", "s2_C.r10.png")] == \
        ["q1_b", "q1_b", "start", "s2_C"]
