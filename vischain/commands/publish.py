"""`vischain publish RUN` (a Hugging Face dataset) and `vischain export RUN` (a folder for trl, LLaMA-Factory,
VLMEvalKit, lmms-eval or any JSON Lines reader; vischain/exports/).

Both refuse a run that fails `vischain validate`: the first problems are printed and the exit code
is 1, as validate's. The heavy imports (datasets) happen inside the commands, so `vischain --help`
stays fast.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from schemas.errors import EXIT_INVALID
from schemas.rules import InvalidRun, require_valid_run
from vischain.error_lines import fail, one_line_errors, stderr
from vischain.exports import FORMATS, default_folder, export_run
from vischain.progress import progress_bar

console = Console(highlight=False, emoji=False)
SHOWN_PROBLEMS = 5
REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


def publish(
    run: Annotated[Path, typer.Argument(help="The run folder (has run.json).")],
    repo: Annotated[Optional[str], typer.Option(help="Upload to this Hub dataset repo, OWNER/NAME.")] = None,
    local_dir: Annotated[Optional[Path], typer.Option(help="Write the dataset folder here instead (offline).")] = None,
    private: Annotated[bool, typer.Option(help="--repo: create the repo private.")] = False,
    revision: Annotated[Optional[str], typer.Option(help="--repo: commit to this branch (created if missing).")] = None,
    include_unreviewed: Annotated[bool, typer.Option(
        "--include-unreviewed", help="With a review (RUN/review.sqlite): publish every task, not only those accepted "
                                     "and quiz-passed; the card says so in bold.")] = False,
):
    """Publish a run as a Hugging Face dataset: one config per task kind, provenance, stories, a card."""
    if (repo is None) == (local_dir is None):
        fail("give exactly one of --repo OWNER/NAME (upload) or --local-dir DIR (write offline)")
    if repo is not None and not REPO_ID.match(repo):
        fail(f"--repo: {repo!r} is not OWNER/NAME")
    if local_dir is not None and (private or revision):
        fail("--private and --revision apply to --repo only")
    if include_unreviewed and (run / "review.sqlite").is_file():
        stderr.print("[bold yellow]warning:[/] --include-unreviewed: tasks the review did not accept and pass are "
                     "published too; the dataset card says so.", markup=True, soft_wrap=True)
    from vischain.hub_dataset import CONFIGS, build_dataset_folder, upload_to_hub  # here: datasets is slow to import

    with one_line_errors(), _refuse_invalid():
        _quiet_datasets()
        if local_dir is not None:
            with progress_bar("publish", total=len(CONFIGS), unit="configs") as advance:
                folder = build_dataset_folder(run, local_dir, include_unreviewed=include_unreviewed, step=advance)
            console.print(f"wrote {local_dir}: {_rows(folder.rows)}")
            return
        with tempfile.TemporaryDirectory(prefix="vischain-publish-") as scratch:
            with progress_bar("publish", total=len(CONFIGS), unit="configs") as advance:
                folder = build_dataset_folder(run, Path(scratch) / run.resolve().name, repo_id=repo,
                                              include_unreviewed=include_unreviewed, step=advance)
            commit = upload_to_hub(folder, repo, private=private, revision=revision)
        console.print(f"published {repo}: {_rows(folder.rows)}\n{commit.commit_url}")


def export(
    run: Annotated[Path, typer.Argument(help="The run folder (has run.json).")],
    format: Annotated[str, typer.Option("--format", help=f"One of {', '.join(FORMATS)}; see docs/exports.md.")],
    out: Annotated[Optional[Path], typer.Option(help="A new or empty folder; default RUN/exports/FORMAT.")] = None,
):
    """Write a run as a folder another tool reads: trl, LLaMA-Factory, VLMEvalKit, lmms-eval, or JSON Lines."""
    if format not in FORMATS:
        fail(f"--format: {format!r} is not one of {', '.join(FORMATS)}")
    with one_line_errors(), _refuse_invalid():
        store = require_valid_run(run)
        folder = out if out is not None else default_folder(run, format)
        with progress_bar(f"export {format}", total=len(store.tasks()), unit="tasks") as advance:
            result = export_run(store, format, folder, step=advance)
    console.print(f"wrote {result.folder}: {result.tasks} task(s) as {format}; see {result.folder / 'README.md'}",
                  soft_wrap=True)


@contextlib.contextmanager
def _refuse_invalid():
    """Answer a run that fails validation as `vischain validate` does: its first problems, then exit 1."""
    try:
        yield
    except InvalidRun as error:
        for problem in error.problems[:SHOWN_PROBLEMS]:
            stderr.print(str(problem), markup=False, soft_wrap=True)
        more = len(error.problems) - SHOWN_PROBLEMS
        hint = f" ({more} more; `vischain validate` lists all)" if more > 0 else ""
        fail(f"RUN: refusing a run that fails validation{hint}", code=EXIT_INVALID)


def _quiet_datasets() -> None:
    # The CLI prints one summary line; datasets' per-shard progress bars would bury it.
    import datasets  # here: slow to import, and only publish needs it

    datasets.disable_progress_bars()


def _rows(rows: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in rows.items())
