"""The progress bar every long vischain step shows: what, a bar, done/total, rate, elapsed, ETA.

    with progress_bar("answering", total=len(tasks)) as advance:
        for task in tasks:
            ...
            advance()

Drawn on stderr, so a command's stdout stays its results; only on a terminal: piped into a file or
a CI log, a bar is redraw noise, and the command's closing line says what was done.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

stderr = Console(stderr=True, emoji=False)


class RateColumn(ProgressColumn):
    """Items per second (or seconds per item when slower than one a second)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if not speed:
            return Text("-/s", style="progress.data.speed")
        text = f"{speed:.1f}/s" if speed >= 1 else f"{1 / speed:.1f}s/it"
        return Text(text, style="progress.data.speed")


@contextlib.contextmanager
def progress_bar(description: str, total: int, unit: str = "") -> Iterator[Callable[[int], None]]:
    """A bar for `total` items; yields `advance(n=1)`. `unit` follows the counts ("tasks", "answers")."""
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn(unit), RateColumn(), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, console=stderr, transient=True, disable=not stderr.is_terminal) as progress:
        bar = progress.add_task(description, total=total)
        yield lambda n=1: progress.advance(bar, n)
