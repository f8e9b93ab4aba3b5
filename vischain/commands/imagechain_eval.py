"""`imagechain eval --recipe FILE` and `imagechain report RESULTS...`.

    imagechain eval --recipe imagechain/recipes/eval/tiny-eval.yaml
    imagechain eval --recipe R.yaml --variants MLLM,ImageChain --judge openai:llama3-70b@http://gpu:8001/v1
    imagechain report runs/a/results.json runs/b/results.json --out runs/table1 --paper

`eval` predicts the next scene for every story of the recipe's bucket under every chosen variant
(OUT/predictions.jsonl, resumable), judges the predictions (OUT/judgments.jsonl, resumable),
optionally extracts cue keywords (OUT/keywords.jsonl), and writes OUT/results.json, results.md and
simrate.png (imagechain.eval.pipeline). `report` merges results files into one table. Bad input is
one line on stderr naming the flag or file, exit code 2; a model server that stays unreachable is
exit code 1 (a re-run resumes where the run stopped).
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from agents.backends.chat import BackendError, ModelNotFound
from imagechain.data.conversation import VARIANTS
from imagechain.eval.config import EvalRecipe, VariantModel, load_recipe, parse_judge
from imagechain.eval.embedding_judge import packaged_model_path
from imagechain.eval.pipeline import run_evaluation
from imagechain.eval.report import load_results, markdown, write_report
from schemas.errors import DataError
from vischain.commands.imagechain_progress import BarProgress
from vischain.error_lines import fail

console = Console(stderr=True, soft_wrap=True, highlight=False)


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
    paper: Annotated[bool, typer.Option(help="Print the paper's Table 1 under each row.")] = True,
) -> None:
    """Predict next scenes for every variant, judge them (SimRate), and write the Table 1 layout."""
    if recipe.suffix not in (".yaml", ".yml"):
        fail(f"--recipe: expected a .yaml file, got {recipe}")
    try:
        spec = load_recipe(recipe)
        spec.judge = parse_judge(judge, "--judge", spec.device) if judge is not None else spec.judge
        spec.out, spec.limit = out or spec.out, limit or spec.limit
        if greedy:
            spec.generation = dataclasses.replace(spec.generation, greedy=True)
        chosen = _choose_variants(spec, variants)
        if spec.judge.kind == "embedding":  # a missing package fails now, not after generating
            packaged_model_path()
        with BarProgress(console) as progress:
            results = asyncio.run(run_evaluation(spec, chosen, progress))
        paths = write_report([results], spec.out, paper)
    except DataError as err:
        fail(str(err))
    except ModelNotFound as err:
        fail(str(err).splitlines()[0])
    except BackendError as err:  # e.g. a server that stayed unreachable: a re-run resumes
        fail(str(err).splitlines()[0], code=1)
    typer.echo(markdown([results], paper))
    console.print(f"results: {paths['json']}, {paths['markdown']}, {paths['png']}", highlight=False)


def report_command(
    results: Annotated[list[Path], typer.Argument(help="results.json files written by `imagechain eval`.")],
    out: Annotated[Optional[Path], typer.Option(help="Write the merged results.json, results.md and simrate.png "
                                                    "here.")] = None,
    paper: Annotated[bool, typer.Option(help="Print the paper's Table 1 under each row.")] = True,
) -> None:
    """Merge results files into one Table 1 layout (markdown on stdout; JSON and PNG with --out)."""
    try:
        loaded = [load_results(path) for path in results]
        if out is not None:
            write_report(loaded, out, paper)
    except DataError as err:
        fail(str(err))
    typer.echo(markdown(loaded, paper))
