"""Step 2's figures: model correctness against the current truth beside human answers, per task and kind."""

from __future__ import annotations

import csv
import io
import json
from xml.etree import ElementTree

from schemas.task import task_turns
from tests.vischain.review.conftest import review_run
from vischain.review.catalog import Catalog
from vischain.review.edits import Editor
from vischain.review.metrics import (
    kind_chart_svg,
    kind_metrics,
    metrics_csv,
    quality_control,
    quiz_threshold,
    task_metrics,
)
from vischain.review.records import Accuracy, HumanAnswer
from vischain.review.store import ReviewStore


def test_model_accuracy_follows_the_truth_an_edit_moves(tmp_path):
    run = review_run(tmp_path / "run").path
    catalog, store = Catalog.load(run), ReviewStore(run / "review.sqlite")
    ada, _ = store.add_reviewer("ada", "reviewer")
    rows = {(r.kind, r.task_id): r for r in task_metrics(catalog, store)}
    # The weak model missed question 1 of itmr-0002: 3 of 4 answers name the truth.
    assert rows[("itmr", "itmr-0002")].models == Accuracy(3, 4)
    evidence = catalog.entry("itmr", "itmr-0002").evidence[1]
    turn = task_turns("itmr", catalog.item(catalog.entry("itmr", "itmr-0002")).task)[0]
    neither = next(c.label for c in turn.choices if c.label not in {a.answer for a in evidence.answers})
    Editor(catalog, store).change_truth(ada, "itmr", "itmr-0002", 1, turn.pointer, neither)
    after = {(r.kind, r.task_id): r for r in task_metrics(catalog, store)}[("itmr", "itmr-0002")]
    assert after.models == Accuracy(2, 4) and after.revision == 2 and after.edits == 1  # both now miss question 1


def test_kind_figures_the_csv_and_the_chart_agree(tmp_path):
    run = review_run(tmp_path / "run").path
    catalog, store = Catalog.load(run), ReviewStore(run / "review.sqlite")
    ada, _ = store.add_reviewer("ada", "reviewer")
    ann, _ = store.add_reviewer("ann", "annotator")
    quinn, _ = store.add_reviewer("quinn", "quiz")
    store.decide(ada, "icir", "icir-0001", "accept", 1)
    store.decide(ada, "icir", "icir-0002", "reject", 1, "blurry")
    store.submit_answers(ann, "icir", "icir-0001", 1, [HumanAnswer(1, "3", "3")], 0.75)
    store.submit_answers(quinn, "icir", "icir-0001", 1, [HumanAnswer(1, "3", "3")], 0.75)
    rows = task_metrics(catalog, store)
    kinds = {k.kind: k for k in kind_metrics(rows, store.passed(0.75))}
    icir = kinds["icir"]
    assert (icir.tasks, icir.reviewed, icir.accepted, icir.rejected, icir.passed) == (3, 2, 1, 1, 1)
    assert icir.annotators == Accuracy(1, 1) and icir.quiz == Accuracy(1, 1) and kinds["iomr"].quiz == Accuracy()
    table = list(csv.DictReader(io.StringIO(metrics_csv(rows))))
    assert len(table) == 9 and table[0]["task_id"] == "itmr-0002" and table[0]["rank"] == "1"
    mine = next(r for r in table if r["task_id"] == "icir-0001")
    assert (mine["status"], mine["quiz_right"], mine["quiz_answers"]) == ("accepted", "1", "1")
    svg = ElementTree.fromstring(kind_chart_svg(list(kinds.values())))
    titles = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}title")]
    assert "icir quiz: 100% (1/1)" in titles and len(svg.findall("{http://www.w3.org/2000/svg}rect")) > 3

    figures = quality_control(run, {("icir", "icir-0001")}, include_unreviewed=False)
    assert figures.reviewed and figures.people == {"reviewer": 1, "annotator": 1, "quiz": 1}
    assert (figures.published, figures.tasks, figures.quiz_threshold) == (1, 9, 0.75)


def test_the_threshold_comes_from_the_server_then_the_recorded_profile_then_the_default(tmp_path):
    run = review_run(tmp_path / "run").path
    assert quiz_threshold(run, None) == 0.75
    config = json.loads((run / "run.json").read_text())
    config["config"]["profile_config"] = {"review": {"quiz_threshold": 0.9}}
    (run / "run.json").write_text(json.dumps(config))
    store = ReviewStore(run / "review.sqlite")
    assert quiz_threshold(run, None) == 0.9 and quiz_threshold(run, store) == 0.9
    store.set_meta("quiz_threshold", "0.6")
    assert quiz_threshold(run, store) == 0.6
