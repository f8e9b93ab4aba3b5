"""`imagechain eval --recipe FILE` and `imagechain report RESULTS...`.

    imagechain eval --recipe imagechain/recipes/eval/tiny-eval.yaml
    imagechain eval --recipe R.yaml --variants MLLM,ImageChain --judge openai:llama3-70b@http://gpu:8001/v1
    imagechain eval --recipe imagechain/recipes/eval/reproduce-table3.yaml       # Mementos, cue F1
    imagechain report runs/a/results.json runs/b/results.json --out runs/table1 --paper

`eval` predicts the next scene for every story of the recipe's bucket under every chosen variant
(OUT/predictions.jsonl, resumable), judges the predictions (OUT/judgments.jsonl, resumable),
optionally extracts cue keywords (OUT/keywords.jsonl), and writes OUT/results.json, results.md and
simrate.png (imagechain.eval.pipeline). A `benchmark: mementos` recipe describes Mementos sequences
and scores them with cue F1 per domain in the layout of Table 3 (imagechain.eval.mementos_eval).
`report` merges results files of one kind into one table. Long steps show progress bars. Bad input
is one line on stderr naming the flag or file, exit code 2; a model server that stays unreachable
is exit code 1 (a re-run resumes where the run stopped).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from agents.backends.chat import BackendError, ModelNotFound
from imagechain.data.conversation import VARIANTS
from imagechain.eval.config import EvalRecipe, VariantModel, load_recipe, parse_judge
from imagechain.eval.embedding_judge import packaged_model_path
from imagechain.eval.mementos_eval import mementos_markdown, run_mementos_evaluation, write_mementos_report
from imagechain.eval.pipeline import run_evaluation
from imagechain.eval.report import RESULTS_KIND, load_results, markdown, write_report
from schemas.errors import DataError
from vischain.error_lines import fail
from vischain.progress import progress_bar

console = Console(stderr=True, soft_wrap=True, highlight=False, emoji=False)


class BarProgress:
    """The evaluation's Progress on the command line: our lines on stderr, each long step as vischain's
    progress bar (counts, rate, elapsed, ETA; drawn on a terminal only)."""

    def say(self, line: str) -> None:
        console.print(line, markup=False)

    @contextlib.contextmanager
    def bar(self, what: str, total: int) -> Iterator[Callable[[int], None]]:
        with progress_bar(what, total) as advance:
            shown = 0

            def tick(done: int) -> None:  # the pipeline counts items done; the bar advances by the difference
                nonlocal shown
                advance(done - shown)
                shown = done

            yield tick


def _choose_variants(recipe: EvalRecipe, flag: str | None) -> dict[str, VariantModel]:
    if not flag:
        return recipe.variants
    chosen = {}
    for name in (n.strip() for n in flag.split(",") if n.strip()):
        if name not in VARIANTS:
            raise DataError(f"--variants: unknown variant {name!r}; known: {', '.join(VARIANTS)}")
        chosen[name] = recipe.variants.get(name, VariantModel(recipe.model))
    if not chosen:
        raise DataError("--variants: name at least one variant")
    return chosen


def eval_command(
    recipe: Annotated[Path, typer.Option(help="The recipe YAML (see imagechain/recipes/eval/).")],
    variants: Annotated[Optional[str], typer.Option(help="Comma-separated variants to run; default: the recipe's.")]
    = None,
    judge: Annotated[Optional[str], typer.Option(help="none, embedding, or a judge model (openai:NAME@URL, "
                                                      "tiny:NAME, a folder); default: the recipe's.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Output folder; default: the recipe's.")] = None,
    limit: Annotated[Optional[int], typer.Option(min=1, help="At most this many stories.")] = None,
    greedy: Annotated[bool, typer.Option(help="Greedy decoding instead of the paper's sampling.")] = False,
    paper: Annotated[bool, typer.Option(help="Print the paper's Table 1 (or 3) under each row.")] = True,
) -> None:
    """Predict next scenes for every variant, judge them (SimRate), and write the Table 1 layout
    (Mementos recipes: cue F1 per domain, the Table 3 layout)."""
    if recipe.suffix not in (".yaml", ".yml"):
        fail(f"--recipe: expected a .yaml file, got {recipe}")
    try:
        spec = load_recipe(recipe)
        if judge is not None and spec.benchmark == "mementos":
            raise DataError("--judge: a mementos recipe is scored by its cue_f1, not by a SimRate judge")
        spec.judge = parse_judge(judge, "--judge", spec.device) if judge is not None else spec.judge
        spec.out, spec.limit = out or spec.out, limit or spec.limit
        if greedy:
            spec.generation = dataclasses.replace(spec.generation, greedy=True)
        chosen = _choose_variants(spec, variants)
        if spec.judge.kind == "embedding":  # a missing package fails now, not after generating
            packaged_model_path()
        if spec.benchmark == "mementos":
            results = asyncio.run(run_mementos_evaluation(spec, chosen, BarProgress()))
        else:
            results = asyncio.run(run_evaluation(spec, chosen, BarProgress()))
        paths = _write([results], spec.out, paper)
    except DataError as err:
        fail(str(err))
    except ModelNotFound as err:
        fail(str(err).splitlines()[0])
    except BackendError as err:  # e.g. a server that stayed unreachable: a re-run resumes
        fail(str(err).splitlines()[0], code=1)
    typer.echo(_markdown([results], paper))
    console.print(f"results: {', '.join(str(path) for path in paths.values())}", highlight=False)


def _write(all_results: list[dict], out: Path, paper: bool) -> dict[str, Path]:
    if all_results[0]["kind"] == RESULTS_KIND:
        return write_report(all_results, out, paper)
    return write_mementos_report(all_results, out, paper)


def _markdown(all_results: list[dict], paper: bool) -> str:
    return (markdown if all_results[0]["kind"] == RESULTS_KIND else mementos_markdown)(all_results, paper)


def report_command(
    results: Annotated[list[Path], typer.Argument(help="results.json files written by `imagechain eval`.")],
    out: Annotated[Optional[Path], typer.Option(help="Write the merged results.json, results.md and simrate.png "
                                                    "here.")] = None,
    paper: Annotated[bool, typer.Option(help="Print the paper's Table 1 (or 3) under each row.")] = True,
) -> None:
    """Merge results files into one Table 1 layout, or Mementos results into one Table 3 layout
    (markdown on stdout; JSON, and for Table 1 the PNG, with --out)."""
    try:
        loaded = [load_results(path) for path in results]
        kinds = {result["kind"] for result in loaded}
        if len(kinds) > 1:
            raise DataError("results: Table 1 (StoryFrames) and Table 3 (Mementos) results cannot share a table; "
                            "report them separately")
        if out is not None:
            _write(loaded, out, paper)
    except DataError as err:
        fail(str(err))
    typer.echo(_markdown(loaded, paper))
