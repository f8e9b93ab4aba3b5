"""The review stage in a real browser against a real server: the three steps of VisChainBench's human
quality control, end to end, with the database and the published dataset checked after each step.

One run (3 tasks per kind, verified by two scripted models, two unused pool images), one uvicorn
server and one chromium for the module. docs/review-queue.png and docs/review-task.png are taken
here (the README shows them).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from agents.protocol.turns import task_script
from schemas.rules import validate_path
from schemas.task import TaskItem, read_task_json, task_images
from tests.vischain.review.browser import images_loaded, launch, sign_in
from tests.vischain.review.conftest import priority_order, review_run, sign_in_link
from vischain.cli import app
from vischain.review.app import create_app
from vischain.review.serving import ThreadedServer
from vischain.review.store import ReviewStore

DOCS = Path(__file__).resolve().parents[3] / "docs"
EVIL = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script> & co'
runner = CliRunner()


@pytest.fixture(scope="module")
def browser():
    playwright, browser = launch()
    yield browser
    browser.close()
    playwright.stop()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    run = review_run(tmp_path_factory.mktemp("review") / "run")
    with ThreadedServer(create_app(run.path, quiz_threshold=0.75)) as server:
        yield run, server.url


def questions(run: Path, kind: str, task_id: str):
    """The task's asked questions as the protocol numbers them, with labels and truth (current revision)."""
    folder = run / "tasks" / kind / task_id
    return task_script(TaskItem(kind, task_id, folder, read_task_json(folder), None)).questions


def state(run: Path, kind: str, task_id: str):
    store = ReviewStore(run / "review.sqlite")
    try:
        return store.state(kind, task_id)
    finally:
        store.close()


def publish(run: Path, out: Path, *flags: str):
    return runner.invoke(app, ["publish", str(run), "--local-dir", str(out), *flags], env={"COLUMNS": "200"})


def published(out: Path) -> set[tuple[str, str]]:
    return {(kind, task_id) for kind in ("itmr", "icir", "iomr") for shard in (out / "data" / kind).glob("*.parquet")
            for task_id in pq.read_table(shard).column("task_id").to_pylist()}


def click_and_wait(page, selector: str) -> None:
    """Click a plain form button and wait for the page the server answers with."""
    with page.expect_navigation():
        page.click(selector)


def answer(page, run: Path, kind: str, task_id: str, right: set[int]) -> None:
    """Choose the truth for the question numbers in `right`, another label for the others."""
    for q in questions(run, kind, task_id):
        label = q.truth if q.number in right else next(lab for lab, _ in q.choices if lab != q.truth)
        page.check(f'input[name="q{q.number}"][value="{label}"]')


def test_a_review_from_the_queue_to_the_published_dataset(browser, served, tmp_path):
    review, url = served
    run = review.path

    # ---- Step 1, reviewers: the queue in verify's order, walked with the keyboard --------------------
    ada_context, page = sign_in(browser, sign_in_link(run, "ada", "reviewer", url))
    assert page.url == f"{url}/queue"
    keys = [row.get_attribute("data-key") for row in page.locator("table.queue tbody tr").all()]
    assert keys == [f"{kind}/{task_id}" for kind, task_id in priority_order(run)]
    assert keys[0] == "itmr/itmr-0002" and page.locator("#unranked").count() == 0
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("a")  # accepts the selected (second) row in place
    page.wait_for_selector('tr[data-key="icir/icir-0001"] .badge.accepted')
    assert state(run, "icir", "icir-0001").status == "accepted"
    page.keyboard.press("k")
    with page.expect_navigation():
        page.keyboard.press("o")
    assert page.url == f"{url}/task/itmr/itmr-0002"

    # The task page: the task as the models saw it, the truth, each model's answer, verdict and reply.
    page.wait_for_load_state("networkidle")
    assert images_loaded(page)
    assert "Scene: A gearbox is open on the bench" in page.inner_text(".model-view .intro")
    weak_row = page.locator("#question-1 ~ table.answers").first.locator("tr", has_text="openai:weak")
    assert "another label" in weak_row.inner_text()
    assert page.locator("#question-1 figure.truth").count() == 1
    page.screenshot(path=str(DOCS / "review-task.png"))

    # An invalid edit is refused with the problem shown, and changes nothing.
    task_file = run / "tasks/itmr/itmr-0002/task.json"
    before = task_file.read_bytes()
    page.fill('textarea[name="text:/questions/0/question"]', "")
    click_and_wait(page, "#save-texts")
    assert "/questions/0/question" in page.inner_text("#problems")
    assert task_file.read_bytes() == before and state(run, "itmr", "itmr-0002").revision == 1

    # A new truth: the weak model's answer to question 1. A new revision, its diff one click away.
    weak_answer = weak_row.locator("td").nth(1).inner_text()
    page.locator("form.truth-form").first.locator("select").select_option(weak_answer)
    click_and_wait(page, "form.truth-form >> nth=0 >> button")
    assert page.inner_text("#notice") == "Saved revision 2."
    assert questions(run, "itmr", "itmr-0002")[0].truth == weak_answer
    page.click('button[hx-get$="/diff/2"]')
    page.wait_for_selector("#diff-2 pre.diff")
    assert '"correct": true' in page.inner_text("#diff-2")
    page.keyboard.press("a")
    page.wait_for_selector("#status.accepted, #decision .badge.accepted")
    assert state(run, "itmr", "itmr-0002").status == "accepted"
    assert [e.action for e in ReviewStore(run / "review.sqlite").events("itmr", "itmr-0002")] == ["edit", "accept"]

    # Text holding HTML and script is saved as text and shown as text.
    page.goto(f"{url}/task/itmr/itmr-0003")
    page.fill('textarea[name="text:/questions/1/question"]', EVIL)
    click_and_wait(page, "#save-texts")
    assert EVIL in page.inner_text("#question-2")
    assert page.evaluate("window.pwned") is None
    assert read_task_json(task_file.parent.with_name("itmr-0003"))["questions"][1]["question"] == EVIL
    page.click("#accept")
    page.wait_for_selector("#decision .badge.accepted")

    # Reject with a reason (r focuses it), flag with a note (f).
    page.goto(f"{url}/task/icir/icir-0002")
    page.keyboard.press("r")
    page.keyboard.type("the gears of steps 1 and 2 look the same")
    page.click("#reject")
    page.wait_for_selector("#decision .badge.rejected")
    assert state(run, "icir", "icir-0002").note == "the gears of steps 1 and 2 look the same"
    page.goto(f"{url}/task/icir/icir-0003")
    page.keyboard.press("f")
    page.keyboard.type("step 3 answer may be ambiguous")
    page.click("#flag")
    page.wait_for_selector("#decision .badge.flagged")

    # Swap an image: one without provenance is refused with the reason; one with provenance goes in.
    page.goto(f"{url}/task/iomr/iomr-0002")
    pointer_row = page.locator("table.images tr", has_text="/steps/0/options/1/image")
    pointer_row.locator("button.swap-open").click()
    page.wait_for_selector(".candidates figure")
    click_and_wait(page, f'form:has(input[value="{review.pool_without_line}"]) button.use-candidate')
    assert "has no provenance line" in page.inner_text("#problems")
    assert state(run, "iomr", "iomr-0002").revision == 1
    page.locator("table.images tr", has_text="/steps/0/options/1/image").locator("button.swap-open").click()
    page.wait_for_selector(".candidates figure")
    click_and_wait(page, f'form:has(input[value="{review.pool_with_line}"]) button.use-candidate')
    assert page.inner_text("#notice") == "Saved revision 2."
    swapped = read_task_json(run / "tasks/iomr/iomr-0002")["steps"][0]["options"][1]["image"]
    assert swapped == "s1_B.r2.png" and validate_path(run).problems == []
    page.click("#accept")
    page.wait_for_selector("#decision .badge.accepted")

    # Mark an image for repainting.
    page.goto(f"{url}/task/iomr/iomr-0003")
    click_and_wait(page, 'table.images tr:has-text("/initial_condition") form button')
    assert state(run, "iomr", "iomr-0003").repaint == ("/initial_condition",)
    assert "Marked for repainting" in page.inner_text("#decision")

    # Two more accepted from the queue, then the queue as the README shows it.
    page.goto(f"{url}/queue")
    for key in ("itmr/itmr-0001", "iomr/iomr-0001"):
        page.click(f'tr[data-key="{key}"] button.accept')
        page.wait_for_selector(f'tr[data-key="{key}"] .badge.accepted')
    page.set_viewport_size({"width": 1000, "height": 500})  # the table, without a screen of empty page below
    page.screenshot(path=str(DOCS / "review-queue.png"))

    # ---- Publishing with a review: nothing has passed the quiz yet -------------------------------------
    refused = publish(run, tmp_path / "none")
    assert refused.exit_code == 2 and "no task is both accepted and passed the quiz (6 accepted)" in refused.output
    loud = publish(run, tmp_path / "all", "--include-unreviewed")
    assert loud.exit_code == 0, loud.output
    assert len(published(tmp_path / "all")) == 9
    assert "**Warning: published with `--include-unreviewed`.** 9 of the 9 task(s)" in \
        (tmp_path / "all" / "README.md").read_text()

    # ---- Annotators: the truth hidden until they submit, then shown; ambiguities flagged --------------
    ann_context, page = sign_in(browser, sign_in_link(run, "ann", "annotator", url))
    assert page.url == f"{url}/annotate" and page.inner_text("#left") == "8 task(s) left."  # all but the rejected
    page.goto(f"{url}/annotate/itmr/itmr-0001")
    hidden_text, html = page.inner_text("main"), page.content()
    assert "truth" not in hidden_text.lower() and "openai:" not in html and "q1_a" not in html
    answer(page, run, "itmr", "itmr-0001", right={1})
    click_and_wait(page, "#submit")
    result = page.inner_text("#result")
    assert "right" in result and "wrong" in result
    store = ReviewStore(run / "review.sqlite")
    assert store.accuracy("annotator")[("itmr", "itmr-0001")].share == 0.5
    page.fill("#flag-note", "question 2: two of the parts look alike")
    click_and_wait(page, "#flag")
    assert "Flag recorded" in page.inner_text("#notice")
    assert state(run, "itmr", "itmr-0001").status == "flagged"

    # ---- Step 3, the quiz: blind answers; a task under the threshold reopens ---------------------------
    quiz_context, page = sign_in(browser, sign_in_link(run, "quinn", "quiz", url))
    open_for_quiz = {("icir", "icir-0001"), ("itmr", "itmr-0002"), ("itmr", "itmr-0003"), ("iomr", "iomr-0002"),
                     ("iomr", "iomr-0001")}
    assert page.inner_text("#left") == f"{len(open_for_quiz)} task(s) left."
    for kind, task_id in sorted(open_for_quiz):
        page.goto(f"{url}/quiz/{kind}/{task_id}")
        html = page.content()
        assert "truth" not in page.inner_text("main").lower() and "openai:" not in html
        assert not any(name in html for _, name in task_images(read_task_json(run / "tasks" / kind / task_id)))
        everything = {q.number for q in questions(run, kind, task_id)}
        answer(page, run, kind, task_id, right=set() if task_id == "iomr-0001" else everything)
        click_and_wait(page, "#submit")
        assert page.inner_text("#notice") == "Answers recorded." and "wrong" not in page.inner_text("main")
    reopened = state(run, "iomr", "iomr-0001")
    assert reopened.status == "reopened" and (reopened.quiz.right, reopened.quiz.answered) == (0, 2)

    # The reviewer finds it in the queue under "reopened", the quiz figures attached.
    page = ada_context.pages[0]
    page.goto(f"{url}/queue")
    page.select_option('select[name="status"]', "reopened")
    page.wait_for_function("document.querySelectorAll('table.queue tbody tr').length === 1")
    assert "quiz 0/2" in page.inner_text('tr[data-key="iomr/iomr-0001"]')
    page.goto(f"{url}/task/iomr/iomr-0001")
    assert "0 of 2 quiz answers right" in page.inner_text("#reopened")

    # ---- Publishing: only what was accepted and passed the quiz, with the figures on the card ---------
    result = publish(run, tmp_path / "reviewed")
    assert result.exit_code == 0, result.output
    passed = {("icir", "icir-0001"), ("itmr", "itmr-0002"), ("itmr", "itmr-0003"), ("iomr", "iomr-0002")}
    assert published(tmp_path / "reviewed") == passed
    rows = pq.read_table(next((tmp_path / "reviewed" / "data" / "itmr").glob("*.parquet"))).to_pylist()
    edited = next(r for r in rows if r["task_id"] == "itmr-0003")
    assert edited["questions"][1]["question"] == EVIL
    provenance = pq.read_table(next((tmp_path / "reviewed" / "data" / "provenance").glob("*.parquet")))
    files = set(provenance.column("file").to_pylist())
    assert "tasks/iomr/iomr-0002/s1_B.r2.png" in files and "tasks/iomr/iomr-0002/s1_B.png" not in files
    assert not any(f.startswith("tasks/iomr/iomr-0001/") or f.startswith("images/") for f in files)
    card = (tmp_path / "reviewed" / "README.md").read_text()
    assert "This dataset holds the 4 of the run's 9 task(s) that a reviewer accepted" in card
    assert "People who took part: 1 annotator(s), 1 quiz taker(s), 1 reviewer(s)." in card
    # kind, tasks, reviewed, accepted, edited, rejected, annotator accuracy, quiz accuracy, accepted and passed
    assert "| itmr | 3 | 3 | 2 | 2 | 0 | 50% (1/2) | 100% (4/4) | 2 |" in card
    assert "| icir | 3 | 3 | 1 | 0 | 1 | - | 100% (1/1) | 1 |" in card
    assert "| iomr | 3 | 3 | 1 | 1 | 0 | - | 50% (2/4) | 1 |" in card

    # ---- Step 2, the metrics view and its CSV ---------------------------------------------------------
    page.goto(f"{url}/metrics")
    assert page.locator("#kinds tbody tr").count() == 3 and page.locator("figure.chart svg rect").count() > 3
    csv_text = ada_context.request.get(f"{url}/metrics.csv").text()
    assert csv_text.splitlines()[0].startswith("kind,task_id,domain,rank,status") and len(csv_text.splitlines()) == 10
    for context in (ada_context, ann_context, quiz_context):
        context.close()


def test_two_reviewers_editing_one_task_the_second_save_is_refused_as_a_conflict(browser, served):
    review, url = served
    run = review.path
    first, page_one = sign_in(browser, sign_in_link(run, "cat", "reviewer", url))
    second, page_two = sign_in(browser, sign_in_link(run, "dan", "reviewer", url))
    task = f"{url}/task/icir/icir-0003"
    page_one.goto(task)
    page_two.goto(task)
    revision = state(run, "icir", "icir-0003").revision
    page_one.fill('textarea[name="text:/task"]', "Pick the gear whose tooth count is written.")
    page_two.fill('textarea[name="text:/task"]', "Pick the gear that matches the number.")
    click_and_wait(page_one, "#save-texts")
    assert page_one.inner_text("#notice") == f"Saved revision {revision + 1}."
    click_and_wait(page_two, "#save-texts")
    conflict = page_two.inner_text("#edit-conflict")
    assert f"you saw revision {revision}, it is now revision {revision + 1}, saved by cat" in conflict
    assert "Nothing of yours was saved" in conflict
    assert read_task_json(run / "tasks/icir/icir-0003")["task"] == "Pick the gear whose tooth count is written."
    edits = [e for e in ReviewStore(run / "review.sqlite").events("icir", "icir-0003") if e.action == "edit"]
    assert [e.reviewer for e in edits] == ["cat"]
    first.close()
    second.close()
