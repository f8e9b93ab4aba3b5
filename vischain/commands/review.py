"""`vischain review`: the human quality-control stage over a run folder (docs/review.md).

    vischain review add-reviewer RUN NAME --role reviewer|annotator|quiz   # prints a one-time sign-in link
    vischain review serve RUN [--host 127.0.0.1] [--port 8765]            # the web app
    vischain review status RUN                                              # tasks per status and kind

Everything is kept in RUN/review.sqlite. The web stack (starlette, uvicorn, jinja2) is imported inside
`serve`, so `vischain --help` does not pay for it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from schemas.errors import UsageError
from schemas.task import TASK_KINDS
from vischain.error_lines import fail, one_line_errors, stderr
from vischain.review.records import ROLES, STATUSES
from vischain.review.store import ReviewStore

console = Console(highlight=False, emoji=False)
app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Human quality control: review, annotate and quiz a run's tasks in the browser.")
NAME = re.compile(r"^[\w][\w .@+-]{0,63}$")
"""A person's name as shown on every page and stored with every action: letters, digits, a few marks."""

RunArgument = Annotated[Path, typer.Argument(help="The run folder (has run.json).")]


def _run_folder(run: Path) -> Path:
    if not (run / "run.json").is_file():
        fail(f"RUN: {run} is not a run folder (no run.json)")
    return run


@app.command("add-reviewer")
def add_reviewer(
    run: RunArgument,
    name: Annotated[str, typer.Argument(help="The person's name, shown with everything they do.")],
    role: Annotated[str, typer.Option(help="reviewer (decides and edits), annotator (answers, then sees the "
                                           "truth) or quiz (answers blind).")],
    url: Annotated[str, typer.Option(help="Where the server is reached, for the printed link.")]
    = "http://127.0.0.1:8765",
):
    """Add a person (or give them a new link) and print a sign-in link that works once."""
    _run_folder(run)
    if role not in ROLES:
        fail(f"--role: {role!r} is not one of {', '.join(ROLES)}")
    if not NAME.match(name):
        fail(f"NAME: {name!r}: use 1-64 letters, digits, spaces or . @ + - _, starting with a letter or digit")
    if not re.match(r"^https?://[^\s/?#]+$", url.rstrip("/")):
        fail(f"--url: {url!r} is not http(s)://HOST[:PORT]")
    store = ReviewStore(run / "review.sqlite")
    try:
        person, token = store.add_reviewer(name, role)
    except ValueError as err:
        fail(str(err))
    finally:
        store.close()
    # soft_wrap: a link cut at the terminal's width would not work when copied.
    console.print(f"{person.name} ({person.role}): sign in once with\n{url.rstrip('/')}/login?token={token}",
                  soft_wrap=True)


@app.command()
def serve(
    run: RunArgument,
    host: Annotated[str, typer.Option(help="Address to listen on; anything but loopback is reachable by others.")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8765,
    profile: Annotated[Optional[str], typer.Option(help="Take review.quiz_threshold from this profile (name or "
                                                        "YAML path) instead of the run's recorded one.")] = None,
):
    """Serve the review web app for a run until Ctrl-C."""
    _run_folder(run)
    with one_line_errors():
        # Here, not at the top: the web stack and the profile loader cost `vischain --help` time.
        from graphs.profile import load_profile
        from vischain.review.metrics import quiz_threshold
        from vischain.review.serving import bind, is_loopback

        threshold = load_profile(profile).review.quiz_threshold if profile else quiz_threshold(run, None)
        if not is_loopback(host):
            stderr.print(f"[bold yellow]warning:[/] --host {host}: the review is reachable from other machines, "
                         "over plain HTTP; sign-in links and session cookies can be read on the way. Prefer an SSH "
                         "tunnel to 127.0.0.1.", markup=True, soft_wrap=True)
        sock = bind(host, port)
    from vischain.review.app import create_app
    from vischain.review.serving import serve as serve_forever

    try:
        with one_line_errors():
            application = create_app(run, threshold)
    except BaseException:
        sock.close()
        raise
    shown = f"[{host}]" if ":" in host else host
    console.print(f"reviewing {run} at http://{shown}:{sock.getsockname()[1]}/ (quiz threshold {threshold:.0%}); "
                  "people sign in with links from `vischain review add-reviewer`. Ctrl-C stops.", soft_wrap=True)
    serve_forever(application, sock)


@app.command()
def status(run: RunArgument):
    """Tasks per review status and kind, and who took part."""
    _run_folder(run)
    with one_line_errors():
        counts, people, passed, total = _status(run)
    table = Table(title=f"review of {run}")
    table.add_column("status")
    for kind in TASK_KINDS:
        table.add_column(kind, justify="right")
    table.add_column("all", justify="right")
    for status_name in STATUSES:
        row = [counts.get((kind, status_name), 0) for kind in TASK_KINDS]
        table.add_row(status_name, *map(str, row), str(sum(row)))
    console.print(table)
    taking_part = ", ".join(f"{n} {role}" for role, n in people.items()) or "nobody yet"
    console.print(f"{total} task(s); {passed} accepted and passed the quiz (what `vischain publish` takes); "
                  f"people: {taking_part}")


def _status(run: Path) -> tuple[dict[tuple[str, str], int], dict[str, int], int, int]:
    """(kind, status) -> tasks (pending included), people per role, tasks passed, all tasks."""
    from vischain.review.metrics import quiz_threshold  # here: it loads the profile code

    tasks = [(kind, folder.name) for kind in TASK_KINDS if (run / "tasks" / kind).is_dir()
             for folder in sorted((run / "tasks" / kind).iterdir())
             if not folder.name.startswith(".") and (folder / "task.json").is_file()]
    if not tasks:
        raise UsageError(f"RUN: {run} has no tasks")
    store = ReviewStore.existing(run)
    if store is None:
        return {(kind, "pending"): sum(k == kind for k, _ in tasks) for kind in TASK_KINDS}, {}, 0, len(tasks)
    try:
        states = store.states()
        counts: dict[tuple[str, str], int] = {}
        for key in tasks:
            status_name = states[key].status if key in states else "pending"
            counts[(key[0], status_name)] = counts.get((key[0], status_name), 0) + 1
        people = {role: len([p for p in store.reviewers() if p.role == role]) for role in ROLES}
        passed = len(store.passed(quiz_threshold(run, store)) & set(tasks))
        return counts, {role: n for role, n in people.items() if n}, passed, len(tasks)
    finally:
        store.close()
