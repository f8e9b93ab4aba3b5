"""Access to the review server, over real HTTP: sessions, roles, CSRF, image lookups, one-time links."""

from __future__ import annotations

import hashlib
import http.client
import re
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.routing import Route

from tests.vischain.review.conftest import review_run, sign_in_link
from vischain.review.app import create_app
from vischain.review.serving import ThreadedServer
from vischain.review.store import ReviewStore

SAMPLE_PARAMS = {"kind": "itmr", "task_id": "itmr-0001", "label": "1", "number": "2"}
REVIEWER_ONLY = ["/queue", "/task/itmr/itmr-0001", "/task/itmr/itmr-0001/diff/2", "/metrics", "/metrics.csv",
                 "/task/itmr/itmr-0001/candidates?pointer=/questions/0/choices/0/image"]
ANNOTATOR_ONLY = ["/annotate", "/annotate/itmr/itmr-0001"]
QUIZ_ONLY = ["/quiz", "/quiz/itmr/itmr-0001"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    run = review_run(tmp_path_factory.mktemp("security") / "run", per_kind=1).path
    app = create_app(run, quiz_threshold=0.75)
    with ThreadedServer(app) as server:
        yield run, app, server.url


def signed_in(run, url, name, role) -> tuple[httpx.Client, str]:
    """An HTTP client with a session, and the session's CSRF token."""
    client = httpx.Client(base_url=url)
    link = sign_in_link(run, name, role, url)
    page = client.get(link.removeprefix(url))
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    token = link.split("token=")[1]
    assert client.post("/login", data={"csrf": csrf, "token": token}).status_code == 303
    home = client.get("/")
    return client, re.search(r'name="csrf" value="([^"]+)"', client.get(home.headers["location"]).text).group(1)


def an_image(run) -> str:
    return hashlib.sha256((run / "tasks/itmr/itmr-0001/q1_a.png").read_bytes()).hexdigest()


def test_without_a_session_every_route_answers_401(served):
    run, app, url = served
    params = {**SAMPLE_PARAMS, "sha256": an_image(run)}
    checked = 0
    with httpx.Client(base_url=url) as client:
        for route in app.routes:
            if not isinstance(route, Route) or route.path == "/login":
                continue  # the sign-in page is the way in; static files hold no run data
            path = re.sub(r"{(\w+)(:\w+)?}", lambda m: params[m.group(1)], route.path)
            for method in route.methods - {"HEAD"}:
                response = client.request(method, path, data={"csrf": "x"} if method == "POST" else None)
                assert response.status_code == 401, (method, path, response.status_code)
                assert "Sign in first" in response.text
                checked += 1
    assert checked >= 20  # every route of the app was tried, GET and POST


def test_each_role_is_refused_the_others_pages(served):
    run, app, url = served
    reviewer, _ = signed_in(run, url, "rita", "reviewer")
    annotator, _ = signed_in(run, url, "anna", "annotator")
    quiz, _ = signed_in(run, url, "quentin", "quiz")
    for client, refused in ((reviewer, ANNOTATOR_ONLY + QUIZ_ONLY), (annotator, REVIEWER_ONLY + QUIZ_ONLY),
                            (quiz, REVIEWER_ONLY + ANNOTATOR_ONLY)):
        for path in refused:
            response = client.get(path)
            assert response.status_code == 403 and "Not for your role" in response.text, path
    for client, allowed in ((reviewer, REVIEWER_ONLY[:2]), (annotator, ANNOTATOR_ONLY), (quiz, QUIZ_ONLY[:1])):
        for path in allowed:
            assert client.get(path).status_code == 200, path
    # A quiz taker cannot post a reviewer's decision even with a valid CSRF token of their own.
    quiz_csrf = re.search(r'name="csrf" value="([^"]+)"', quiz.get("/quiz").text).group(1)
    response = quiz.post("/task/itmr/itmr-0001/decide", data={"csrf": quiz_csrf, "action": "accept", "revision": "1"})
    assert response.status_code == 403
    assert ReviewStore(run / "review.sqlite").state("itmr", "itmr-0001").status == "pending"


def test_a_post_without_the_sessions_csrf_token_is_refused_and_changes_nothing(served):
    run, app, url = served
    client, csrf = signed_in(run, url, "rob", "reviewer")
    form = {"action": "reject", "revision": "1", "text": "no"}
    for extra, headers in (({}, {}), ({"csrf": "wrong"}, {}), ({}, {"x-csrf-token": "wrong"}),
                           ({"csrf": csrf[:-1]}, {})):
        response = client.post("/task/icir/icir-0001/decide", data={**form, **extra}, headers=headers)
        assert response.status_code == 403 and "CSRF" in response.text
    store = ReviewStore(run / "review.sqlite")
    assert store.events("icir", "icir-0001") == []
    # The same request with the token (as a field or as htmx's header) goes through.
    response = client.post("/task/icir/icir-0001/decide", data=form, headers={"x-csrf-token": csrf})
    assert response.status_code == 303 and store.state("icir", "icir-0001").status == "rejected"
    # Another session's token is not this session's.
    other, other_csrf = signed_in(run, url, "ruth", "reviewer")
    assert client.post("/task/icir/icir-0001/decide", data={**form, "csrf": other_csrf}).status_code == 403


@pytest.mark.parametrize("target", [
    "/image/../run.json", "/image/../../run.json", "/image/..%2F..%2Frun.json", "/image/%2e%2e%2frun.json",
    "/image/{sha}/..%2F..%2Frun.json", "/image/{sha}/../../review.sqlite", "/image/review.sqlite",
    "/image/" + "0" * 64, "/image/{run_json_sha}", "/image/{sha}/A%2F..%2F..", "/image/{sha}/100",
    "/static/../run.json", "/static/..%2Frun.json", "/static/%2e%2e/review.sqlite", "/image/%2Fetc%2Fpasswd",
])
def test_image_and_static_routes_find_files_by_hash_only(served, target):
    run, app, url = served
    client, _ = signed_in(run, url, f"viewer-{hashlib.md5(target.encode()).hexdigest()[:8]}", "reviewer")
    target = target.format(sha=an_image(run), run_json_sha=hashlib.sha256((run / "run.json").read_bytes()).hexdigest())
    # http.client sends the request target exactly as written (httpx would resolve the dot segments).
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
    connection.request("GET", target, headers={"Cookie": cookie})
    response = connection.getresponse()
    body = response.read()
    connection.close()
    assert response.status == 404, (target, response.status)
    assert b'"config"' not in body and b"SQLite" not in body and b"root:" not in body


def test_a_real_image_is_served_and_the_headers_lock_the_page_down(served):
    run, app, url = served
    client, _ = signed_in(run, url, "iris", "quiz")
    sha = an_image(run)
    assert client.get(f"/image/{sha}").content == (run / "tasks/itmr/itmr-0001/q1_a.png").read_bytes()
    labelled = client.get(f"/image/{sha}/2")
    assert labelled.status_code == 200 and labelled.headers["content-type"] == "image/png"
    page = client.get("/quiz")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"


def test_a_sign_in_link_works_once(served):
    run, app, url = served
    link = sign_in_link(run, "otto", "annotator", url)
    first = httpx.Client(base_url=url)
    page = first.get(link.removeprefix(url))
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    token = link.split("token=")[1]
    response = first.post("/login", data={"csrf": csrf, "token": token})
    assert response.status_code == 303
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    second = httpx.Client(base_url=url)
    again = second.get(link.removeprefix(url))
    assert again.status_code == 403 and "does not work" in again.text
    # With a valid CSRF token (from another person's sign-in page) the spent token still does not sign in.
    other = second.get(sign_in_link(run, "olga", "quiz", url).removeprefix(url))
    csrf = re.search(r'name="csrf" value="([^"]+)"', other.text).group(1)
    spent = second.post("/login", data={"csrf": csrf, "token": token})
    assert spent.status_code == 403 and "does not work" in spent.text
    assert second.get("/annotate").status_code == 401
    assert first.get("/annotate").status_code == 200  # the session it opened lives on
    assert first.post("/login", data={"token": "guess"}).status_code == 403  # no CSRF token, no sign-in
