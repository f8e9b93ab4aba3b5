"""The review server: a Starlette app over one run folder, pages rendered on the server, htmx for
in-page actions. `vischain review serve` runs it under uvicorn; tests and the bench call `create_app`.

    app = create_app(Path("runs/eng"), quiz_threshold=0.75)

Here: the routes, sign-in, images, and the reviewers' pages (step 1's queue and task page with its
edits, step 2's metrics). Sessions, roles and CSRF are in web.py; annotators and the quiz in
answering.py. Images are looked up by content hash in the run's own files; no part of a request
becomes a path.

Blocking work (SQLite, task files, image labelling) runs in Starlette's thread pool, so several
people can work at once.
"""

from __future__ import annotations

import difflib
import re
import secrets
from collections.abc import Callable
from pathlib import Path

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from agents.protocol.labels import labelled_image
from schemas.task import TASK_KINDS, task_images
from vischain.review.answering import annotate_list, annotator_flag, answer_page, quiz_list, submit_answers
from vischain.review.candidates import swap_candidates
from vischain.review.catalog import Catalog, Entry
from vischain.review.edits import Editor, EditRefused
from vischain.review.metrics import kind_chart_svg, kind_metrics, metrics_csv, share_text, task_metrics
from vischain.review.records import STATUSES, Conflict, Reviewer
from vischain.review.store import ReviewStore
from vischain.review.views import QueueFilter, next_in_queue, queue_page, queue_row, task_view
from vischain.review.web import (
    HOME,
    SESSION_COOKIE,
    SESSION_SECONDS,
    BadRequest,
    Review,
    SecurityHeaders,
    allowed,
    csrf_ok,
    form_int,
    form_text,
    message_page,
    not_found,
    render,
    signed_in,
    task_route,
)

HERE = Path(__file__).parent
SHA256 = re.compile(r"^[0-9a-f]{64}$")
LABEL = re.compile(r"^(?:[A-Z]|[1-9][0-9]?)$")
"""A label the protocol draws: a letter (IOMR) or a number from 1 (ITMR, ICIR)."""


def create_app(run_dir: Path, quiz_threshold: float) -> Starlette:
    """The review app over `run_dir`: opens (or creates) RUN/review.sqlite and finishes any save a
    killed server left half done before it serves a page."""
    catalog = Catalog.load(Path(run_dir).resolve())
    store = ReviewStore(catalog.root / "review.sqlite")
    store.set_meta("quiz_threshold", repr(quiz_threshold))
    editor = Editor(catalog, store)
    editor.reconcile_all()
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                                     undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    environment.filters["share"] = share_text
    templates = Jinja2Templates(env=environment)
    review = Review(catalog, store, editor, templates, quiz_threshold, catalog.root / "review-labels")
    task = "/task/{kind}/{task_id}"
    routes = [
        Route("/", home), Route("/login", login_page), Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/image/{sha256}", image), Route("/image/{sha256}/{label}", labelled),
        Route("/queue", queue), Route(task, task_page), Route(task + "/decide", decide, methods=["POST"]),
        Route(task + "/truth", edit_truth, methods=["POST"]), Route(task + "/texts", edit_texts, methods=["POST"]),
        Route(task + "/candidates", candidates), Route(task + "/swap", swap, methods=["POST"]),
        Route(task + "/repaint", repaint, methods=["POST"]), Route(task + "/diff/{number:int}", diff),
        Route("/metrics", metrics), Route("/metrics.csv", metrics_download),
        Route("/annotate", annotate_list), Route("/annotate/{kind}/{task_id}", answer_page),
        Route("/annotate/{kind}/{task_id}", submit_answers, methods=["POST"]),
        Route("/annotate/{kind}/{task_id}/flag", annotator_flag, methods=["POST"]),
        Route("/quiz", quiz_list), Route("/quiz/{kind}/{task_id}", answer_page),
        Route("/quiz/{kind}/{task_id}", submit_answers, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    middleware = [Middleware(SecurityHeaders),
                  Middleware(SessionMiddleware, secret_key=store.session_secret(), session_cookie=SESSION_COOKIE,
                             max_age=SESSION_SECONDS, same_site="strict")]
    app = Starlette(routes=routes, middleware=middleware)
    app.state.review = review
    return app


async def home(request: Request) -> Response:
    person = await run_in_threadpool(signed_in, request)
    if person is None:
        return message_page(request, 401, "Sign in first",
                            "Open the sign-in link that `vischain review add-reviewer` printed for you.")
    return RedirectResponse(HOME[person.role], status_code=303)


async def login_page(request: Request) -> Response:
    token = request.query_params.get("token", "")
    owner = await run_in_threadpool(request.app.state.review.store.token_owner, token) if token else None
    if owner is None:
        return message_page(request, 403, "This sign-in link does not work",
                            "It was used before, replaced by a newer one, or is not a link of this review. "
                            "Ask for a new one (`vischain review add-reviewer RUN NAME --role ROLE`).")
    return render(request, "login.html", {"owner": owner, "token": token})


async def login(request: Request) -> Response:
    if not await csrf_ok(request):
        return message_page(request, 403, "Missing or wrong CSRF token", "Open the sign-in link again.")
    token = (await request.form()).get("token")
    person = await run_in_threadpool(request.app.state.review.store.use_token, token) \
        if isinstance(token, str) else None
    if person is None:
        return message_page(request, 403, "This sign-in link does not work",
                            "It was used before, replaced by a newer one, or is not a link of this review.")
    request.session.clear()  # a fresh session: nothing from before the sign-in carries over
    request.session.update({"reviewer": person.id, "csrf": secrets.token_urlsafe(32)})
    return RedirectResponse(HOME[person.role], status_code=303)


@allowed()
async def logout(request: Request, person: Reviewer) -> Response:
    request.session.clear()
    return message_page(request, 200, "Signed out", "Open a new sign-in link to come back.")


# ---- Images -----------------------------------------------------------------------------------------

@allowed()
async def image(request: Request, person: Reviewer) -> Response:
    path = _image_path(request)
    return FileResponse(path, headers={"cache-control": "private, max-age=86400"}) if path else not_found(request)


@allowed()
async def labelled(request: Request, person: Reviewer) -> Response:
    """A candidate with its label drawn on, as the models see it."""
    source, label = _image_path(request), request.path_params["label"]
    if source is None or not LABEL.match(label):
        return not_found(request)
    path = await run_in_threadpool(labelled_image, source, label, request.app.state.review.labels_dir)
    return FileResponse(path, headers={"cache-control": "private, max-age=86400"})


def _image_path(request: Request) -> Path | None:
    sha256 = request.path_params["sha256"]
    path = request.app.state.review.catalog.images.path(sha256) if SHA256.match(sha256) else None
    return path if path is not None and path.is_file() else None


# ---- Step 1: the queue and the task page (reviewers) ---------------------------------------------------

@allowed("reviewer")
async def queue(request: Request, person: Reviewer) -> Response:
    review: Review = request.app.state.review
    params = request.query_params
    wanted = QueueFilter(params.get("kind", ""), params.get("domain", ""), params.get("status", ""),
                         int(params["page"]) if params.get("page", "").isdigit() else 1)

    def page():
        store = review.store
        return queue_page(review.catalog, store.states(), store.accuracy("annotator"), store.accuracy("quiz"), wanted)

    shown = await run_in_threadpool(page)
    template = "queue_rows.html" if request.headers.get("hx-request") else "queue.html"
    domains = sorted({e.domain for e in review.catalog.entries})
    return render(request, template, {"page": shown, "kinds": TASK_KINDS, "domains": domains, "statuses": STATUSES,
                                      "ranked": review.catalog.ranked}, person=person)


@allowed("reviewer")
@task_route
async def task_page(request: Request, person: Reviewer, entry: Entry) -> Response:
    saved = request.query_params.get("saved")
    notice = f"Saved revision {saved}." if saved and saved.isdigit() else None
    return await run_in_threadpool(task_response, request, person, entry, notice)


def task_response(request: Request, person: Reviewer, entry: Entry, notice: str | None = None,
                  problems: list[str] | None = None, conflict: str | None = None, status: int = 200) -> Response:
    """The reviewer's task page: the task as models see it, truth, model answers, human answers, history."""
    review: Review = request.app.state.review
    store = review.store
    item = review.catalog.item(entry)
    state = store.state(entry.kind, entry.task_id)
    following = next_in_queue(review.catalog, store.states(), entry)
    context = {
        "entry": entry, "state": state, "view": task_view(review.catalog, entry, item), "notice": notice,
        "problems": problems or [], "conflict": conflict, "events": store.events(entry.kind, entry.task_id),
        "revisions": store.revisions(entry.kind, entry.task_id),
        "annotations": store.answers(entry.kind, entry.task_id, "annotator", state.revision),
        "quiz": store.answers(entry.kind, entry.task_id, "quiz", state.revision),
        "next": following, "threshold": review.quiz_threshold,
    }
    return render(request, "task.html", context, status, person)


@allowed("reviewer")
@task_route
async def decide(request: Request, person: Reviewer, entry: Entry) -> Response:
    """Accept, reject (with a reason) or flag (with a note). From the queue (view=row) the row comes back;
    from the task page (view=panel) the decision panel; without htmx the task page."""
    review: Review = request.app.state.review
    form = await request.form()
    action, revision = form.get("action"), form_int(form, "revision")
    if action not in ("accept", "reject", "flag"):
        raise BadRequest(f"action: {action!r} is not accept, reject or flag")
    text = form_text(form, "text", required=action != "accept") if action != "accept" else ""
    view = form.get("view")

    def act() -> Response:
        try:
            state = review.store.decide(person, entry.kind, entry.task_id, action, revision, text.strip())
            conflict = None
        except Conflict as err:
            state, conflict = review.store.state(entry.kind, entry.task_id), str(err)
        if view == "row":
            row = queue_row(entry, state, review.store.accuracy("annotator"), review.store.accuracy("quiz"))
            return render(request, "queue_row.html", {"row": row, "conflict": conflict}, 409 if conflict else 200,
                          person)
        if view == "panel":
            return render(request, "decision.html", {"entry": entry, "state": state, "conflict": conflict,
                                                     "threshold": review.quiz_threshold},
                          409 if conflict else 200, person)
        if conflict:
            return task_response(request, person, entry, conflict=conflict, status=409)
        return RedirectResponse(f"/task/{entry.kind}/{entry.task_id}", status_code=303)
    return await run_in_threadpool(act)


def _edit_response(request: Request, person: Reviewer, entry: Entry, edit: Callable[[], int]) -> Response:
    """Run an edit: 303 to the task page when saved, the page with the problems (422) or the conflict (409)."""
    try:
        number = edit()
    except EditRefused as refused:
        return task_response(request, person, entry, problems=refused.problems, status=422)
    except Conflict as conflict:
        return task_response(request, person, entry, conflict=str(conflict), status=409)
    return RedirectResponse(f"/task/{entry.kind}/{entry.task_id}?saved={number}", status_code=303)


@allowed("reviewer")
@task_route
async def edit_truth(request: Request, person: Reviewer, entry: Entry) -> Response:
    form = await request.form()
    revision, pointer, label = form_int(form, "revision"), form_text(form, "pointer"), form_text(form, "label")
    editor = request.app.state.review.editor
    return await run_in_threadpool(_edit_response, request, person, entry, lambda: editor.change_truth(
        person, entry.kind, entry.task_id, revision, pointer, label))


@allowed("reviewer")
@task_route
async def edit_texts(request: Request, person: Reviewer, entry: Entry) -> Response:
    """Fields are named `text:<JSON pointer>`; the browser sends \r\n in textareas, the task keeps \n."""
    form = await request.form()
    revision = form_int(form, "revision")
    texts = {key[len("text:"):]: value.replace("\r\n", "\n") for key, value in form.multi_items()
             if key.startswith("text:") and isinstance(value, str)}
    if not texts:
        raise BadRequest("no text:<pointer> fields")
    editor = request.app.state.review.editor
    return await run_in_threadpool(_edit_response, request, person, entry, lambda: editor.change_texts(
        person, entry.kind, entry.task_id, revision, texts))


@allowed("reviewer")
@task_route
async def candidates(request: Request, person: Reviewer, entry: Entry) -> Response:
    """The swap panel of one image: unused pool images, the slot's own first."""
    review: Review = request.app.state.review
    pointer = request.query_params.get("pointer", "")

    def panel() -> Response:
        item = review.catalog.item(entry)
        images = dict(task_images(item.task))
        if pointer not in images:
            raise BadRequest(f"pointer: {pointer!r} is not an image of this task")
        found = swap_candidates(review.catalog, entry.kind, entry.task_id, images[pointer])
        state = review.store.state(entry.kind, entry.task_id)
        return render(request, "candidates.html", {"entry": entry, "pointer": pointer, "name": images[pointer],
                                                   "candidates": found, "state": state}, person=person)
    return await run_in_threadpool(panel)


@allowed("reviewer")
@task_route
async def swap(request: Request, person: Reviewer, entry: Entry) -> Response:
    review: Review = request.app.state.review
    form = await request.form()
    revision, pointer, sha256 = form_int(form, "revision"), form_text(form, "pointer"), form_text(form, "sha256")

    def edit() -> int:
        images = dict(task_images(review.catalog.item(entry).task))
        if pointer not in images:
            raise EditRefused([f"{pointer}: not an image of this task"])
        found = {c.sha256: c for c in swap_candidates(review.catalog, entry.kind, entry.task_id, images[pointer])}
        if sha256 not in found:
            raise EditRefused([f"{sha256[:12]}…: not an unused candidate image of this run (another task may have "
                               "taken it)"])
        return review.editor.swap_image(person, entry.kind, entry.task_id, revision, pointer, found[sha256])
    return await run_in_threadpool(_edit_response, request, person, entry, edit)


@allowed("reviewer")
@task_route
async def repaint(request: Request, person: Reviewer, entry: Entry) -> Response:
    """Mark an image for repainting; `vischain generate` does the painting later."""
    review: Review = request.app.state.review
    form = await request.form()
    revision, pointer = form_int(form, "revision"), form_text(form, "pointer")

    def mark() -> Response:
        if pointer not in dict(task_images(review.catalog.item(entry).task)):
            raise BadRequest(f"pointer: {pointer!r} is not an image of this task")
        try:
            review.store.decide(person, entry.kind, entry.task_id, "repaint", revision, pointer=pointer)
        except Conflict as err:
            return task_response(request, person, entry, conflict=str(err), status=409)
        return RedirectResponse(f"/task/{entry.kind}/{entry.task_id}", status_code=303)
    return await run_in_threadpool(mark)


@allowed("reviewer")
@task_route
async def diff(request: Request, person: Reviewer, entry: Entry) -> Response:
    """Revision N against N-1, as a unified diff of task.json."""
    number = request.path_params["number"]
    revisions = {r.number: r for r in await run_in_threadpool(
        request.app.state.review.store.revisions, entry.kind, entry.task_id)}
    if number not in revisions or number - 1 not in revisions:
        return not_found(request)
    lines = difflib.unified_diff(revisions[number - 1].text.splitlines(keepends=True),
                                 revisions[number].text.splitlines(keepends=True),
                                 f"revision {number - 1}", f"revision {number}")
    return render(request, "diff.html", {"number": number, "lines": list(lines)}, person=person)


# ---- Step 2: the metrics view (reviewers) --------------------------------------------------------------

@allowed("reviewer")
async def metrics(request: Request, person: Reviewer) -> Response:
    review: Review = request.app.state.review

    def page() -> Response:
        rows = task_metrics(review.catalog, review.store)
        kinds = kind_metrics(rows, review.store.passed(review.quiz_threshold))
        people = review.store.people_who_acted()
        return render(request, "metrics.html", {"rows": rows, "kinds": kinds, "chart": kind_chart_svg(kinds),
                                                "people": people, "threshold": review.quiz_threshold},
                      person=person)
    return await run_in_threadpool(page)


@allowed("reviewer")
async def metrics_download(request: Request, person: Reviewer) -> Response:
    review: Review = request.app.state.review
    text = await run_in_threadpool(lambda: metrics_csv(task_metrics(review.catalog, review.store)))
    name = f"{review.catalog.root.name}-review-metrics.csv"
    return Response(text, media_type="text/csv; charset=utf-8",
                    headers={"content-disposition": f'attachment; filename="{name}"'})
