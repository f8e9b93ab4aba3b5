"""`vischain review add-reviewer | serve | status`: one-line errors, one-time links, counts per status and kind."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time

import httpx
import pytest
from typer.testing import CliRunner

from tests.oracle_runs import make_run
from vischain.cli import app
from vischain.review.records import HumanAnswer
from vischain.review.store import ReviewStore

runner = CliRunner()
WIDE = {"COLUMNS": "200"}


@pytest.fixture
def run(tmp_path):
    return make_run(tmp_path / "run", per_kind=2)


def one_line_error(result, code: int, *words: str) -> None:
    assert result.exit_code == code, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and all(w in lines[0] for w in words), result.output


def test_add_reviewer_prints_a_link_whose_token_works_once(run):
    result = runner.invoke(app, ["review", "add-reviewer", str(run), "Ada L.", "--role", "reviewer",
                                 "--url", "http://127.0.0.1:9000/"], env=WIDE)
    assert result.exit_code == 0, result.output
    link = re.search(r"http://127\.0\.0\.1:9000/login\?token=(\S+)", result.output)
    assert link and "Ada L. (reviewer)" in result.output
    store = ReviewStore(run / "review.sqlite")
    assert store.use_token(link.group(1)).name == "Ada L." and store.use_token(link.group(1)) is None


@pytest.mark.parametrize("args, words", [
    (["NOT_A_RUN", "ada", "--role", "reviewer"], ("RUN:", "not a run folder")),
    (["{run}", "ada", "--role", "admin"], ("--role", "'admin'", "reviewer, annotator, quiz")),
    (["{run}", "<b>", "--role", "quiz"], ("NAME:", "'<b>'")),
    (["{run}", "ada", "--role", "quiz", "--url", "ftp://x"], ("--url",)),
])
def test_add_reviewer_refuses_bad_input_in_one_line(run, tmp_path, args, words):
    args = [str(tmp_path / "nothing") if a == "NOT_A_RUN" else a.format(run=run) for a in args]
    one_line_error(runner.invoke(app, ["review", "add-reviewer", *args], env=WIDE), 2, *words)
    assert not (tmp_path / "nothing").exists()


def test_a_name_keeps_its_role(run):
    assert runner.invoke(app, ["review", "add-reviewer", str(run), "ada", "--role", "annotator"]).exit_code == 0
    result = runner.invoke(app, ["review", "add-reviewer", str(run), "ada", "--role", "quiz"], env=WIDE)
    one_line_error(result, 2, "NAME:", "already takes part as annotator")


def test_status_counts_tasks_per_status_and_kind(run):
    result = runner.invoke(app, ["review", "status", str(run)], env=WIDE)
    assert result.exit_code == 0, result.output
    assert re.search(r"pending\s+│\s+2\s+│\s+2\s+│\s+2\s+│\s+6", result.output), result.output
    assert "0 accepted and passed the quiz" in result.output and not (run / "review.sqlite").exists()

    store = ReviewStore(run / "review.sqlite")
    ada, _ = store.add_reviewer("ada", "reviewer")
    quinn, _ = store.add_reviewer("quinn", "quiz")
    store.decide(ada, "itmr", "itmr-0001", "accept", 1)
    store.decide(ada, "itmr", "itmr-0002", "reject", 1, "duplicate of itmr-0001")
    store.decide(ada, "iomr", "iomr-0001", "accept", 1)
    store.submit_answers(quinn, "itmr", "itmr-0001", 1, [HumanAnswer(1, "1", "1"), HumanAnswer(2, "2", "2")], 0.75)
    result = runner.invoke(app, ["review", "status", str(run)], env=WIDE)
    assert result.exit_code == 0, result.output
    cells = [[c.strip() for c in line.strip().strip("│").split("│")] for line in result.output.splitlines()
             if line.startswith("│")]
    rows = {row[0]: row[1:] for row in cells}
    assert rows["accepted"] == ["1", "0", "1", "2"] and rows["rejected"] == ["1", "0", "0", "1"]
    assert rows["pending"] == ["0", "2", "1", "3"]
    assert "1 accepted and passed the quiz" in result.output and "people: 1 reviewer, 1 quiz" in result.output


def test_status_of_a_folder_that_is_not_a_run(tmp_path):
    one_line_error(runner.invoke(app, ["review", "status", str(tmp_path)], env=WIDE), 2, "RUN:", "not a run folder")


def test_serve_refuses_a_taken_port_a_bad_port_and_an_unknown_profile_in_one_line(run):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["review", "serve", str(run), "--port", str(port)], env=WIDE)
        one_line_error(result, 2, "--port:", f"127.0.0.1:{port}")
    one_line_error(runner.invoke(app, ["review", "serve", str(run), "--port", "70000"], env=WIDE), 2, "--port: 70000")
    one_line_error(runner.invoke(app, ["review", "serve", str(run), "--profile", "nope"], env=WIDE), 2,
                   "--profile", "unknown profile 'nope'")
    one_line_error(runner.invoke(app, ["review", "serve", str(run / "tasks"), "--port", "0"], env=WIDE), 2, "RUN:")


def test_serve_warns_before_listening_anywhere_but_loopback(run):
    # Port 70000 fails right after the warning, so nothing listens on another interface.
    result = runner.invoke(app, ["review", "serve", str(run), "--host", "0.0.0.0", "--port", "70000"], env=WIDE)
    assert result.exit_code == 2
    assert "warning: --host 0.0.0.0: the review is reachable from other machines" in result.output
    assert result.output.strip().splitlines()[-1].startswith("error: --port: 70000")


def test_serve_takes_the_quiz_threshold_from_a_profile(run, tmp_path):
    profile = tmp_path / "strict.yaml"
    profile.write_text("description: strict review\nmodels:\n  planner: {model: a}\n  keywords: {model: a}\n"
                       "  validator: {model: a}\npainter: {model: b}\nsearch: {providers: [folder]}\n"
                       "review: {quiz_threshold: 0.9}\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "vischain.cli", "review", "serve", str(run), "--port", str(port),
                               "--profile", str(profile)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/queue").status_code == 401:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        assert ReviewStore(run / "review.sqlite").meta("quiz_threshold") == "0.9"
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    assert f"at http://127.0.0.1:{port}/ (quiz threshold 90%)" in output.replace("\n", " ")


def test_publish_without_a_review_says_so_on_the_card(run, tmp_path):
    result = runner.invoke(app, ["publish", str(run), "--local-dir", str(tmp_path / "out")], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "**No human review.**" in (tmp_path / "out" / "README.md").read_text()
