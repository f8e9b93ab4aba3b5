"""A review server killed mid-save (SIGKILL: no cleanup runs) loses or half-applies nothing."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import httpx

from schemas.rules import validate_path
from tests.oracle_runs import make_run
from vischain.review.catalog import Catalog
from vischain.review.edits import Editor
from vischain.review.store import ReviewStore, text_sha256

TASKS = ("itmr/itmr-0001", "itmr/itmr-0002", "icir/icir-0001", "icir/icir-0002")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(run, port: int) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "vischain.cli", "review", "serve", str(run), "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/").status_code == 401:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError(f"the server did not start: {process.stdout.read().decode()}")


def assert_consistent(run) -> ReviewStore:
    """What a restart must find: an intact database whose state is its log replayed, every task.json at
    its latest revision, and a run that validates."""
    Editor(Catalog.load(run), ReviewStore(run / "review.sqlite")).reconcile_all()  # as create_app does
    store = ReviewStore(run / "review.sqlite")
    assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    states = store.states()
    store.rebuild()
    assert store.states() == states
    for kind, task_id in store.revised_tasks():
        latest = store.revisions(kind, task_id)[-1]
        assert text_sha256((run / "tasks" / kind / task_id / "task.json").read_text()) == latest.sha256
        assert states[(kind, task_id)].revision == latest.number
    assert validate_path(run).problems == []
    return store


def test_a_server_killed_while_people_save_leaves_every_save_whole_or_absent(tmp_path):
    run = make_run(tmp_path / "run", per_kind=2)
    store = ReviewStore(run / "review.sqlite")
    _, token = store.add_reviewer("ada", "reviewer")
    store.close()
    port = free_port()
    server = start_server(run, port)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}")
    page = client.get(f"/login?token={token}")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    client.post("/login", data={"csrf": csrf, "token": token})
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/queue").text).group(1)  # the session's own
    saved, unexpected, stop = [], [], threading.Event()

    def save_until_killed():
        n = 0
        while not stop.is_set():
            task = TASKS[n % len(TASKS)]
            try:
                page = client.get(f"/task/{task}")
                revision = re.search(r'name="revision" value="(\d+)"', page.text).group(1)
                field = "text:/initial_scene_description" if task.startswith("itmr") else "text:/task"
                response = client.post(f"/task/{task}/texts", data={"csrf": csrf, "revision": revision,
                                                                    field: f"Version {n} of this text."})
                if response.status_code == 303:
                    saved.append(task)
                else:
                    unexpected.append((task, response.status_code))
            except (httpx.TransportError, AttributeError):
                return  # the server is gone
            n += 1

    worker = threading.Thread(target=save_until_killed)
    worker.start()
    time.sleep(1.5)
    os.kill(server.pid, signal.SIGKILL)
    server.wait()
    stop.set()
    worker.join()
    assert len(saved) > 3 and unexpected == [], (len(saved), unexpected)

    store = assert_consistent(run)
    edits = [e for e in store.events() if e.action == "edit"]
    # Every save the client saw answered is in the log; at most the one in flight at the kill is extra.
    assert len(saved) <= len(edits) <= len(saved) + 1


def test_a_kill_between_the_commit_and_the_task_json_write_is_finished_on_restart(tmp_path):
    run = make_run(tmp_path / "run", per_kind=1)
    original = (run / "tasks/itmr/itmr-0001/task.json").read_text()
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from vischain.review import edits
        from vischain.review.catalog import Catalog
        from vischain.review.store import ReviewStore

        real = edits.write_atomically
        def write(path, data, fsync=True):
            if Path(path).name == "task.json":
                os.kill(os.getpid(), signal.SIGKILL)  # the revision is committed; task.json is not written
            return real(path, data, fsync)
        edits.write_atomically = write
        run = Path({str(run)!r})
        store = ReviewStore(run / "review.sqlite")
        ada, _ = store.add_reviewer("ada", "reviewer")
        edits.Editor(Catalog.load(run), store).change_texts(ada, "itmr", "itmr-0001", 1,
                                                             {{"/questions/0/question": "Which gear fits?"}})
    """)
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert (run / "tasks/itmr/itmr-0001/task.json").read_text() == original
    with sqlite3.connect(run / "review.sqlite") as db:
        assert db.execute("SELECT MAX(number) FROM revisions").fetchone()[0] == 2
    store = assert_consistent(run)
    assert "Which gear fits?" in (run / "tasks/itmr/itmr-0001/task.json").read_text()
    assert [e.action for e in store.events("itmr", "itmr-0001")] == ["edit"]
