"""review.sqlite: the review stage's append-only event log, and the state derived from it.

One file in the run folder holds everything people do to a run's tasks:

    events      who, when, what, on which task and revision, the state before and after. Append-only:
                triggers refuse an UPDATE or DELETE.
    revisions   every text a task.json has had under review (1 is the text as generated); append-only.
    task_state  derived: each task's status, revision, counts and marks, from its events.
    answers     derived: each annotator and quiz answer, from the `annotate` and `quiz` events.
    reviewers, login_tokens, meta   who may sign in (tokens stored as SHA-256 only) and settings.

Every write is one IMMEDIATE transaction that appends the event and updates the derived rows, so a
killed server leaves the file as it was before or after the action, never between; `rebuild()`
replays the log into fresh derived tables. Several server threads (or processes) may write at once:
SQLite serialises the transactions.

    store = ReviewStore(run / "review.sqlite")
    reviewer, token = store.add_reviewer("ada", "reviewer")
    store.decide(reviewer, "itmr", "itmr-0001", "accept", revision_seen=1)
    store.states()[("itmr", "itmr-0001")].status          # "accepted"
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from vischain.review.records import (
    ROLES,
    Accuracy,
    Conflict,
    Event,
    HumanAnswer,
    QuizResult,
    Reviewer,
    Revision,
    TaskState,
    apply_event,
    changed_fields,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reviewers (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, role TEXT NOT NULL, created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS login_tokens (
    token_sha256 TEXT PRIMARY KEY, reviewer_id INTEGER NOT NULL REFERENCES reviewers(id),
    created TEXT NOT NULL, used TEXT);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, reviewer_id INTEGER REFERENCES reviewers(id),
    kind TEXT NOT NULL, task_id TEXT NOT NULL, action TEXT NOT NULL, revision INTEGER NOT NULL,
    detail TEXT NOT NULL, before TEXT NOT NULL, after TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_task ON events (kind, task_id);
CREATE TABLE IF NOT EXISTS revisions (
    kind TEXT NOT NULL, task_id TEXT NOT NULL, number INTEGER NOT NULL, text TEXT NOT NULL,
    sha256 TEXT NOT NULL, event_id INTEGER, PRIMARY KEY (kind, task_id, number));
CREATE TABLE IF NOT EXISTS task_state (
    kind TEXT NOT NULL, task_id TEXT NOT NULL, status TEXT NOT NULL, revision INTEGER NOT NULL,
    note TEXT, flags INTEGER NOT NULL, edits INTEGER NOT NULL, repaint TEXT NOT NULL, quiz TEXT,
    event_id INTEGER NOT NULL, PRIMARY KEY (kind, task_id));
CREATE TABLE IF NOT EXISTS answers (
    event_id INTEGER NOT NULL, reviewer_id INTEGER NOT NULL, role TEXT NOT NULL, kind TEXT NOT NULL,
    task_id TEXT NOT NULL, revision INTEGER NOT NULL, question INTEGER NOT NULL, label TEXT NOT NULL,
    truth TEXT NOT NULL, correct INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS answers_task ON answers (kind, task_id, revision);
"""
# The log and the revisions are history: no statement may change or remove a row once written.
APPEND_ONLY = "".join(
    f"CREATE TRIGGER IF NOT EXISTS {table}_no_{verb} BEFORE {verb.upper()} ON {table} "
    f"BEGIN SELECT RAISE(ABORT, '{table} are append-only'); END;\n"
    for table in ("events", "revisions") for verb in ("update", "delete"))


# ---- The store ------------------------------------------------------------------------------------

class ReviewStore:
    """review.sqlite of one run. One connection per thread; writes go through `transaction()`."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._local = threading.local()
        self.db.executescript(SCHEMA + APPEND_ONLY)  # IF NOT EXISTS throughout: opening twice is harmless

    @classmethod
    def existing(cls, run_dir: Path) -> ReviewStore | None:
        """The run's store when a review has started, else None (and no file is made)."""
        path = Path(run_dir) / "review.sqlite"
        return cls(path) if path.is_file() else None

    @property
    def db(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            # isolation_level=None: transactions are the explicit BEGIN IMMEDIATE below, nothing implicit.
            connection = sqlite3.connect(str(self.path), isolation_level=None, timeout=30, check_same_thread=True)
            connection.execute("PRAGMA journal_mode=WAL")  # readers never wait for a writer
            connection.execute("PRAGMA foreign_keys=ON")
            self._local.connection = connection
        return connection

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception: all of an action or none of it."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        """Close this thread's connection (the others close with their threads)."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    # ---- settings ----------------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def session_secret(self) -> str:
        """The key that signs session cookies: made once, kept here so a restart keeps people signed in."""
        with self.transaction() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'session_secret'").fetchone()
            if row:
                return row[0]
            secret = secrets.token_urlsafe(32)
            db.execute("INSERT INTO meta (key, value) VALUES ('session_secret', ?)", (secret,))
            return secret

    # ---- people ------------------------------------------------------------------------------------

    def add_reviewer(self, name: str, role: str) -> tuple[Reviewer, str]:
        """The person (created if new) and a fresh one-time login token; earlier unused tokens stop working.
        ValueError when the role is unknown or the name is taken by another role."""
        if role not in ROLES:
            raise ValueError(f"--role: {role!r} is not one of {', '.join(ROLES)}")
        token = secrets.token_urlsafe(32)
        with self.transaction() as db:
            row = db.execute("SELECT id, role FROM reviewers WHERE name = ?", (name,)).fetchone()
            if row and row[1] != role:
                raise ValueError(f"NAME: {name!r} already takes part as {row[1]}; give another name")
            if row is None:
                reviewer_id = db.execute("INSERT INTO reviewers (name, role, created) VALUES (?, ?, ?)",
                                         (name, role, _now())).lastrowid
            else:
                reviewer_id = row[0]
            db.execute("UPDATE login_tokens SET used = ? WHERE reviewer_id = ? AND used IS NULL",
                       ("replaced " + _now(), reviewer_id))
            db.execute("INSERT INTO login_tokens (token_sha256, reviewer_id, created) VALUES (?, ?, ?)",
                       (_token_hash(token), reviewer_id, _now()))
        return Reviewer(reviewer_id, name, role), token

    def token_owner(self, token: str) -> Reviewer | None:
        """Whose unused token this is, without using it (the sign-in page names the person)."""
        row = self.db.execute("SELECT r.id, r.name, r.role FROM login_tokens t JOIN reviewers r "
                              "ON r.id = t.reviewer_id WHERE t.token_sha256 = ? AND t.used IS NULL",
                              (_token_hash(token),)).fetchone()
        return Reviewer(*row) if row else None

    def use_token(self, token: str) -> Reviewer | None:
        """The token's person, the token spent; None when it is unknown or was used before."""
        with self.transaction() as db:
            row = db.execute("SELECT reviewer_id FROM login_tokens WHERE token_sha256 = ? AND used IS NULL",
                             (_token_hash(token),)).fetchone()
            if row is None:
                return None
            db.execute("UPDATE login_tokens SET used = ? WHERE token_sha256 = ?", (_now(), _token_hash(token)))
        return self.reviewer(row[0])

    def reviewer(self, reviewer_id: int) -> Reviewer | None:
        row = self.db.execute("SELECT id, name, role FROM reviewers WHERE id = ?", (reviewer_id,)).fetchone()
        return Reviewer(*row) if row else None

    def reviewers(self) -> list[Reviewer]:
        return [Reviewer(*row) for row in self.db.execute("SELECT id, name, role FROM reviewers ORDER BY id")]

    def people_who_acted(self) -> dict[str, int]:
        """role -> people with at least one event: the reviewers a dataset card may count."""
        rows = self.db.execute("SELECT r.role, COUNT(DISTINCT r.id) FROM events e JOIN reviewers r "
                               "ON r.id = e.reviewer_id GROUP BY r.role")
        return dict(rows.fetchall())

    # ---- state -------------------------------------------------------------------------------------

    def states(self) -> dict[tuple[str, str], TaskState]:
        """Every task that has events; a task missing here is pending at revision 1."""
        rows = self.db.execute("SELECT kind, task_id, status, revision, note, flags, edits, repaint, quiz "
                               "FROM task_state")
        return {(row[0], row[1]): _state(row) for row in rows}

    def state(self, kind: str, task_id: str, db: sqlite3.Connection | None = None) -> TaskState:
        row = (db or self.db).execute("SELECT kind, task_id, status, revision, note, flags, edits, repaint, quiz "
                                      "FROM task_state WHERE kind = ? AND task_id = ?", (kind, task_id)).fetchone()
        return _state(row) if row else TaskState(kind, task_id)

    def events(self, kind: str | None = None, task_id: str | None = None) -> list[Event]:
        """The log in order: of one task, or all of it."""
        query = ("SELECT e.id, e.time, r.name, r.role, e.kind, e.task_id, e.action, e.revision, e.detail, e.before, "
                 "e.after FROM events e LEFT JOIN reviewers r ON r.id = e.reviewer_id")
        rows = (self.db.execute(query + " WHERE e.kind = ? AND e.task_id = ? ORDER BY e.id", (kind, task_id))
                if kind else self.db.execute(query + " ORDER BY e.id"))
        return [Event(*row[:8], json.loads(row[8]), json.loads(row[9]), json.loads(row[10])) for row in rows]

    def accuracy(self, role: str) -> dict[tuple[str, str], Accuracy]:
        """(kind, task_id) -> the role's answers on each task's current revision."""
        rows = self.db.execute(
            "SELECT a.kind, a.task_id, SUM(a.correct), COUNT(*) FROM answers a LEFT JOIN task_state s "
            "ON s.kind = a.kind AND s.task_id = a.task_id WHERE a.role = ? AND a.revision = COALESCE(s.revision, 1) "
            "GROUP BY a.kind, a.task_id", (role,))
        return {(kind, task_id): Accuracy(right, answered) for kind, task_id, right, answered in rows}

    def answered_by(self, reviewer: Reviewer) -> set[tuple[str, str]]:
        """Tasks this person answered on their current revision."""
        rows = self.db.execute(
            "SELECT DISTINCT a.kind, a.task_id FROM answers a LEFT JOIN task_state s ON s.kind = a.kind "
            "AND s.task_id = a.task_id WHERE a.reviewer_id = ? AND a.revision = COALESCE(s.revision, 1)",
            (reviewer.id,))
        return set(rows.fetchall())

    def answers(self, kind: str, task_id: str, role: str, revision: int) -> list[tuple[str, HumanAnswer]]:
        """(person, answer) of one role on one revision, for the task page."""
        rows = self.db.execute(
            "SELECT r.name, a.question, a.label, a.truth FROM answers a JOIN reviewers r ON r.id = a.reviewer_id "
            "WHERE a.kind = ? AND a.task_id = ? AND a.role = ? AND a.revision = ? ORDER BY a.event_id, a.question",
            (kind, task_id, role, revision))
        return [(name, HumanAnswer(question, label, truth)) for name, question, label, truth in rows]

    def counts(self) -> dict[tuple[str, str], int]:
        """(kind, status) -> tasks with events (pending tasks without events are not counted here)."""
        return {(kind, status): n for kind, status, n in
                self.db.execute("SELECT kind, status, COUNT(*) FROM task_state GROUP BY kind, status")}

    def edited(self) -> set[tuple[str, str]]:
        return set(self.db.execute("SELECT kind, task_id FROM task_state WHERE edits > 0").fetchall())

    def passed(self, threshold: float) -> set[tuple[str, str]]:
        """Tasks accepted whose quiz answers on the current revision reach the threshold: what may be published."""
        quiz = self.accuracy("quiz")
        return {key for key, state in self.states().items() if state.status == "accepted"
                and key in quiz and quiz[key].answered and quiz[key].share >= threshold}

    # ---- revisions ---------------------------------------------------------------------------------

    def revisions(self, kind: str, task_id: str, db: sqlite3.Connection | None = None) -> list[Revision]:
        rows = (db or self.db).execute("SELECT number, text, sha256, event_id FROM revisions WHERE kind = ? AND "
                                       "task_id = ? ORDER BY number", (kind, task_id))
        return [Revision(*row) for row in rows]

    def revised_tasks(self) -> list[tuple[str, str]]:
        return self.db.execute("SELECT DISTINCT kind, task_id FROM revisions ORDER BY kind, task_id").fetchall()

    def add_revision(self, db: sqlite3.Connection, kind: str, task_id: str, number: int, text: str,
                     event_id: int | None) -> None:
        """Inside a transaction: one more text of a task."""
        db.execute("INSERT INTO revisions (kind, task_id, number, text, sha256, event_id) VALUES (?, ?, ?, ?, ?, ?)",
                   (kind, task_id, number, text, text_sha256(text), event_id))

    # ---- actions -----------------------------------------------------------------------------------

    def decide(self, reviewer: Reviewer, kind: str, task_id: str, action: str, revision_seen: int,
               text: str = "", pointer: str | None = None) -> TaskState:
        """accept, reject (text: the reason), flag (text: the note) or repaint (pointer: the image).
        Conflict when the task's revision is no longer the one the person saw."""
        with self.transaction() as db:
            state = self.state(kind, task_id, db)
            if state.revision != revision_seen:
                raise Conflict(self.conflict_message(db, kind, task_id, revision_seen, state.revision))
            detail = {"reason": text} if action == "reject" else {"note": text} if action == "flag" else \
                {"pointer": pointer} if action == "repaint" else {}
            self.record(db, reviewer, kind, task_id, action, state.revision, detail)
            return self.state(kind, task_id, db)

    def submit_answers(self, reviewer: Reviewer, kind: str, task_id: str, revision_seen: int,
                       answers: list[HumanAnswer], quiz_threshold: float) -> TaskState:
        """An annotator's or quiz taker's answers to one task. A quiz that leaves an accepted task under
        the threshold reopens it in the same transaction, its figures attached."""
        action = {"annotator": "annotate", "quiz": "quiz"}[reviewer.role]
        with self.transaction() as db:
            state = self.state(kind, task_id, db)
            if state.revision != revision_seen:
                raise Conflict(self.conflict_message(db, kind, task_id, revision_seen, state.revision))
            done = db.execute("SELECT 1 FROM answers WHERE reviewer_id = ? AND kind = ? AND task_id = ? AND "
                              "revision = ? LIMIT 1", (reviewer.id, kind, task_id, state.revision)).fetchone()
            if done:
                raise Conflict(f"you already answered {task_id} (revision {state.revision}); answers count once")
            self.record(db, reviewer, kind, task_id, action, state.revision,
                        {"answers": [{"question": a.question, "label": a.label, "truth": a.truth} for a in answers]})
            if action == "quiz" and state.status == "accepted":
                right, answered = db.execute(
                    "SELECT SUM(correct), COUNT(*) FROM answers WHERE kind = ? AND task_id = ? AND role = 'quiz' "
                    "AND revision = ?", (kind, task_id, state.revision)).fetchone()
                if answered and right / answered < quiz_threshold:
                    self.record(db, None, kind, task_id, "reopen", state.revision,
                                {"right": right, "answered": answered, "threshold": quiz_threshold})
            return self.state(kind, task_id, db)

    def conflict_message(self, db: sqlite3.Connection, kind: str, task_id: str, seen: int, now: int) -> str:
        last = db.execute("SELECT e.time, r.name, e.action FROM events e LEFT JOIN reviewers r ON r.id = e.reviewer_id "
                          "WHERE e.kind = ? AND e.task_id = ? AND e.action IN ('edit', 'external') "
                          "ORDER BY e.id DESC LIMIT 1", (kind, task_id)).fetchone()
        who = f"{last[1] or 'a change outside review'} ({last[2]}, {last[0]})" if last else "someone"
        return (f"conflict: {task_id} changed while you had it open: you saw revision {seen}, it is now revision "
                f"{now}, saved by {who}. Nothing of yours was saved; reload the task and do it again.")

    def record(self, db: sqlite3.Connection, reviewer: Reviewer | None, kind: str, task_id: str, action: str,
               revision: int, detail: dict) -> int:
        """Inside a transaction: append one event and apply it to the derived state. Returns its id."""
        before = self.state(kind, task_id, db)
        after = apply_event(before, action, revision, detail)
        cursor = db.execute(
            "INSERT INTO events (time, reviewer_id, kind, task_id, action, revision, detail, before, after) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (_now(), reviewer.id if reviewer else None, kind, task_id, action, revision,
             json.dumps(detail, ensure_ascii=False), json.dumps(changed_fields(before, after, "before")),
             json.dumps(changed_fields(before, after, "after"))))
        _write_state(db, after, cursor.lastrowid)
        if action in ("annotate", "quiz"):
            _write_answers(db, cursor.lastrowid, reviewer, kind, task_id, revision, detail["answers"])
        return cursor.lastrowid

    def rebuild(self) -> None:
        """Throw the derived tables away and replay the log into them: the state is what the events say."""
        with self.transaction() as db:
            db.execute("DELETE FROM task_state")
            db.execute("DELETE FROM answers")
            rows = db.execute("SELECT e.id, e.reviewer_id, r.role, e.kind, e.task_id, e.action, e.revision, e.detail "
                              "FROM events e LEFT JOIN reviewers r ON r.id = e.reviewer_id ORDER BY e.id").fetchall()
            for event_id, reviewer_id, role, kind, task_id, action, revision, detail in rows:
                detail = json.loads(detail)
                _write_state(db, apply_event(self.state(kind, task_id, db), action, revision, detail), event_id)
                if action in ("annotate", "quiz"):
                    _write_answers(db, event_id, Reviewer(reviewer_id, "", role), kind, task_id, revision,
                                   detail["answers"])


def _write_state(db: sqlite3.Connection, state: TaskState, event_id: int) -> None:
    quiz = json.dumps(state.quiz.__dict__) if state.quiz else None
    db.execute("INSERT OR REPLACE INTO task_state (kind, task_id, status, revision, note, flags, edits, repaint, quiz, "
               "event_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
               (state.kind, state.task_id, state.status, state.revision, state.note, state.flags, state.edits,
                json.dumps(list(state.repaint)), quiz, event_id))


def _write_answers(db: sqlite3.Connection, event_id: int, reviewer: Reviewer, kind: str, task_id: str,
                   revision: int, answers: list[dict]) -> None:
    db.executemany("INSERT INTO answers (event_id, reviewer_id, role, kind, task_id, revision, question, label, truth, "
                   "correct) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   [(event_id, reviewer.id, reviewer.role, kind, task_id, revision, a["question"], a["label"],
                     a["truth"], int(a["label"] == a["truth"])) for a in answers])


def _state(row: tuple) -> TaskState:
    quiz = QuizResult(**json.loads(row[8])) if row[8] else None
    return TaskState(row[0], row[1], row[2], row[3], row[4], row[5], row[6], tuple(json.loads(row[7])), quiz)


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _token_hash(token: str) -> str:
    # A token is 32 random bytes: a plain SHA-256 cannot be reversed or guessed, so no slow hash is needed.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
