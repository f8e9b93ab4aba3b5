"""Progress bars for `imagechain` commands: counts, rate and time left on every long step.

`BarProgress` is the command line's `imagechain.eval.pipeline.Progress`: our lines print through
the same console as the bars, so a line never lands in the middle of a bar. A console that is not a
terminal (a log file, a test) gets each bar once, when its step ends.

    with BarProgress(console) as progress:
        results = asyncio.run(run_evaluation(recipe, variants, progress))
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


class RateColumn(ProgressColumn):
    """Items per second (predictions, judgments, ...), or `?/s` before the first item."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("?/s" if speed is None else f"{speed:.2f}/s", style="progress.data.speed")


class BarProgress:
    def __init__(self, console: Console):
        self.console = console
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(),
                                  TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=console,
                                  transient=False)

    def __enter__(self) -> "BarProgress":
        self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.stop()

    def say(self, line: str) -> None:
        self._progress.console.print(line, highlight=False, markup=False)

    @contextlib.contextmanager
    def bar(self, what: str, total: int) -> Iterator[Callable[[int], None]]:
        task = self._progress.add_task(what, total=total)
        try:
            yield lambda done: self._progress.update(task, completed=done)
        finally:
            self._progress.stop_task(task)  # the clock stops; the bar stays with its final count
