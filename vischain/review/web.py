"""What every page of the review app shares: the app's state, sessions and roles, CSRF, security
headers, rendering, form fields and the task a path names (docs/review.md, "Security").

A person signs in once with the one-time link `vischain review add-reviewer` printed; the session is
a signed cookie (SameSite=Strict, HttpOnly). `allowed(...)` wraps every route but the sign-in page
and the static files: 401 without a session, 403 to another role, 403 to a POST without the
session's CSRF token (form field `csrf` or header X-CSRF-Token). Pages are sent with a
Content-Security-Policy that allows scripts from this server only.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vischain.review.catalog import Catalog, Entry
from vischain.review.edits import Editor
from vischain.review.records import Reviewer
from vischain.review.store import ReviewStore

SESSION_COOKIE = "vischain_review"
SESSION_SECONDS = 12 * 3600
"""A working day; then the person signs in again with a new link."""
HOME = {"reviewer": "/queue", "annotator": "/annotate", "quiz": "/quiz"}
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; "
                                 b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),  # the sign-in link's token must not travel in a Referer
]


@dataclass
class Review:
    """What every handler needs; one per app, at `app.state.review`."""

    catalog: Catalog
    store: ReviewStore
    editor: Editor
    templates: Jinja2Templates
    quiz_threshold: float
    labels_dir: Path
    """Labelled copies of candidate images, drawn on first view (content-addressed)."""


class BadRequest(Exception):
    """A request a page cannot have sent (a missing field, a label no choice has): 400 with the reason."""


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every response, and no-store to pages (they show live state)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += SECURITY_HEADERS
                if any(k == b"content-type" and v.startswith(b"text/html") for k, v in headers):
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)
        await self.app(scope, receive, send_with_headers)


# ---- Access -----------------------------------------------------------------------------------------

Handler = Callable[[Request, Reviewer], Awaitable[Response]]


def allowed(*roles: str) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """The route answers 401 without a session, 403 to a role not in `roles` (any role when empty), 403 to
    a POST without the session's CSRF token, 400 to a BadRequest; else the handler runs."""
    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            person = await run_in_threadpool(signed_in, request)
            if person is None:
                return message_page(request, 401, "Sign in first",
                                    "Open the sign-in link that `vischain review add-reviewer` printed for you.")
            if roles and person.role not in roles:
                return message_page(request, 403, "Not for your role",
                                    f"This page is for the {' or '.join(roles)} role; you take part as {person.role}.")
            if request.method == "POST" and not await csrf_ok(request):
                return message_page(request, 403, "Missing or wrong CSRF token",
                                    "Reload the page and try again; nothing was saved.")
            try:
                return await handler(request, person)
            except BadRequest as err:
                return message_page(request, 400, "Bad request", str(err))
        return endpoint
    return wrap


def signed_in(request: Request) -> Reviewer | None:
    reviewer_id = request.session.get("reviewer")
    return request.app.state.review.store.reviewer(reviewer_id) if isinstance(reviewer_id, int) else None


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use."""
    if not isinstance(request.session.get("csrf"), str):
        request.session["csrf"] = secrets.token_urlsafe(32)
    return request.session["csrf"]


async def csrf_ok(request: Request) -> bool:
    expected = request.session.get("csrf")
    given = request.headers.get("x-csrf-token") or (await request.form()).get("csrf")
    return isinstance(expected, str) and isinstance(given, str) and secrets.compare_digest(expected, given)


def render(request: Request, template: str, context: dict, status: int = 200, person: Reviewer | None = None):
    review: Review = request.app.state.review
    base = {"person": person, "csrf": csrf_token(request), "home": HOME.get(person.role) if person else None}
    return review.templates.TemplateResponse(request, template, {**base, **context}, status_code=status)


def message_page(request: Request, status: int, title: str, text: str, person: Reviewer | None = None) -> Response:
    return render(request, "message.html", {"title": title, "text": text, "status": status}, status, person)


def not_found(request: Request) -> Response:
    return message_page(request, 404, "Not found", "No such image or task in this run.")


def _entry(request: Request) -> Entry:
    entry = request.app.state.review.catalog.entry(request.path_params["kind"], request.path_params["task_id"])
    if entry is None:
        raise LookupError
    return entry


def task_route(handler: Callable[[Request, Reviewer, Entry], Awaitable[Response]]) -> Handler:
    """The handler gets the task the path names; an unknown task is 404."""
    async def with_entry(request: Request, person: Reviewer) -> Response:
        try:
            entry = _entry(request)
        except LookupError:
            return not_found(request)
        return await handler(request, person, entry)
    with_entry.__name__ = handler.__name__
    return with_entry


def form_int(form: FormData, name: str) -> int:
    value = form.get(name)
    if not isinstance(value, str) or not value.isdigit():
        raise BadRequest(f"{name}: expected a number, got {value!r}")
    return int(value)


def form_text(form: FormData, name: str, required: bool = True) -> str:
    value = form.get(name)
    if not isinstance(value, str) or (required and not value.strip()):
        raise BadRequest(f"{name}: required")
    return value
