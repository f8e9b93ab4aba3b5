"""One-line errors for the command line: what is wrong and where, then a non-zero exit."""

from __future__ import annotations

import contextlib

import typer
from rich.console import Console
from rich.markup import escape

from agents.backends.chat import BackendError
from schemas.errors import EXIT_USAGE, UsageError

stderr = Console(stderr=True, highlight=False, emoji=False)


def fail(message: str, code: int = EXIT_USAGE) -> None:
    """`error: MESSAGE` on stderr, then exit; the message is escaped, so `data=[a]` prints as given."""
    stderr.print(f"[bold red]error:[/] {escape(message)}", markup=True, soft_wrap=True)
    raise typer.Exit(code)


@contextlib.contextmanager
def one_line_errors():
    """Turn the errors users cause into one line and exit code 2 instead of a traceback."""
    try:
        yield
    except (UsageError, BackendError) as err:
        fail(str(err))
