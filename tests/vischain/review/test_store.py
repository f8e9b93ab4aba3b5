"""review.sqlite: an append-only log whose derived state is exactly what replaying the log gives."""

from __future__ import annotations

import hashlib
import sqlite3
import threading

import pytest

from vischain.review.records import Conflict, HumanAnswer
from vischain.review.store import ReviewStore


@pytest.fixture
def store(tmp_path):
    return ReviewStore(tmp_path / "review.sqlite")


def test_a_token_is_stored_hashed_works_once_and_a_new_link_replaces_the_old(store, tmp_path):
    person, first = store.add_reviewer("ada", "reviewer")
    raw = b"".join(path.read_bytes() for path in tmp_path.glob("review.sqlite*"))  # the WAL too
    assert first.encode() not in raw and b"ada" in raw
    assert store.db.execute("SELECT token_sha256 FROM login_tokens").fetchone()[0] == \
        hashlib.sha256(first.encode()).hexdigest()
    assert store.token_owner(first) == person
    assert store.use_token(first) == person
    assert store.use_token(first) is None and store.token_owner(first) is None
    _, second = store.add_reviewer("ada", "reviewer")
    _, third = store.add_reviewer("ada", "reviewer")
    assert store.use_token(second) is None  # replaced by the third before it was used
    assert store.use_token(third) == person
    with pytest.raises(ValueError, match="already takes part as reviewer"):
        store.add_reviewer("ada", "quiz")
    with pytest.raises(ValueError, match="--role"):
        store.add_reviewer("bob", "admin")


@pytest.mark.parametrize("statement", ["UPDATE events SET action = 'reject'", "DELETE FROM events",
                                       "UPDATE revisions SET text = 'other'", "DELETE FROM revisions"])
def test_events_and_revisions_cannot_be_changed_or_deleted(store, statement):
    ada, _ = store.add_reviewer("ada", "reviewer")
    store.decide(ada, "itmr", "t1", "accept", 1)
    with store.transaction() as db:
        store.add_revision(db, "itmr", "t1", 1, "{}\n", None)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.db.execute(statement)
    assert [e.action for e in store.events("itmr", "t1")] == ["accept"]
    assert [r.text for r in store.revisions("itmr", "t1")] == ["{}\n"]


def test_the_state_is_the_log_replayed(store):
    ada, _ = store.add_reviewer("ada", "reviewer")
    ann, _ = store.add_reviewer("ann", "annotator")
    quinn, _ = store.add_reviewer("quinn", "quiz")
    store.decide(ada, "itmr", "t1", "flag", 1, "two choices look alike")
    store.decide(ada, "itmr", "t1", "accept", 1)
    store.decide(ada, "icir", "t2", "reject", 1, "labels are unreadable")
    store.decide(ada, "iomr", "t3", "repaint", 1, pointer="/steps/0/options/1/image")
    store.submit_answers(ann, "itmr", "t1", 1, [HumanAnswer(1, "2", "2"), HumanAnswer(2, "1", "3")], 0.75)
    store.submit_answers(quinn, "itmr", "t1", 1, [HumanAnswer(1, "2", "2"), HumanAnswer(2, "3", "3")], 0.75)
    before = (store.states(), store.accuracy("annotator"), store.accuracy("quiz"))
    store.rebuild()
    assert (store.states(), store.accuracy("annotator"), store.accuracy("quiz")) == before
    states = before[0]
    assert states[("itmr", "t1")].status == "accepted" and states[("itmr", "t1")].flags == 1
    assert states[("icir", "t2")].note == "labels are unreadable"
    assert states[("iomr", "t3")].status == "repaint"
    assert states[("iomr", "t3")].repaint == ("/steps/0/options/1/image",)
    assert before[1][("itmr", "t1")].share == 0.5 and before[2][("itmr", "t1")].share == 1.0
    assert store.passed(0.75) == {("itmr", "t1")}
    flag = store.events("itmr", "t1")[0]
    assert (flag.reviewer, flag.before, flag.after) == ("ada", {"status": "pending", "flags": 0, "note": None},
                                                        {"status": "flagged", "flags": 1,
                                                         "note": "two choices look alike"})


def test_a_quiz_under_the_threshold_reopens_an_accepted_task_with_its_figures(store):
    ada, _ = store.add_reviewer("ada", "reviewer")
    quinn, _ = store.add_reviewer("quinn", "quiz")
    quill, _ = store.add_reviewer("quill", "quiz")
    store.decide(ada, "itmr", "t1", "accept", 1)
    state = store.submit_answers(quinn, "itmr", "t1", 1, [HumanAnswer(1, "1", "1"), HumanAnswer(2, "2", "2")], 0.75)
    assert state.status == "accepted" and store.passed(0.75) == {("itmr", "t1")}
    state = store.submit_answers(quill, "itmr", "t1", 1, [HumanAnswer(1, "2", "1"), HumanAnswer(2, "1", "2")], 0.75)
    assert state.status == "reopened" and (state.quiz.right, state.quiz.answered, state.quiz.threshold) == (2, 4, 0.75)
    assert store.passed(0.75) == set()
    assert store.events("itmr", "t1")[-1].action == "reopen" and store.events("itmr", "t1")[-1].reviewer is None
    with pytest.raises(Conflict, match="already answered"):
        store.submit_answers(quill, "itmr", "t1", 1, [HumanAnswer(1, "1", "1"), HumanAnswer(2, "2", "2")], 0.75)


def test_a_decision_on_a_revision_that_is_no_longer_current_is_a_conflict(store):
    ada, _ = store.add_reviewer("ada", "reviewer")
    with store.transaction() as db:  # what an edit records
        store.record(db, ada, "itmr", "t1", "edit", 2, {"what": "truth"})
    with pytest.raises(Conflict, match="you saw revision 1, it is now revision 2, saved by ada"):
        store.decide(ada, "itmr", "t1", "accept", 1)
    assert store.state("itmr", "t1").status == "pending"


def test_a_failed_transaction_leaves_nothing_behind(store):
    ada, _ = store.add_reviewer("ada", "reviewer")
    with pytest.raises(RuntimeError):
        with store.transaction() as db:
            store.record(db, ada, "itmr", "t1", "accept", 1, {})
            raise RuntimeError("killed mid-save")
    assert store.events() == [] and store.states() == {}


def test_several_threads_write_at_once_without_losing_an_event(store):
    people = [store.add_reviewer(f"p{i}", "reviewer")[0] for i in range(4)]

    def work(person):
        for n in range(25):
            store.decide(person, "itmr", f"{person.name}-{n}", "accept", 1)

    threads = [threading.Thread(target=work, args=(person,)) for person in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store.events()) == 100 and len(store.states()) == 100
