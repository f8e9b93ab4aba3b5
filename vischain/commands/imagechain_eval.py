"""`imagechain eval --recipe FILE` and `imagechain report RESULTS...`.

    imagechain eval --recipe imagechain/recipes/tiny-eval.yaml
    imagechain eval --recipe R.yaml --variants MLLM,ImageChain --judge openai:llama3-70b@http://gpu:8001/v1
    imagechain report runs/a/results.json runs/b/results.json --out runs/table1 --paper

`eval` predicts the next scene for every story of the recipe's bucket under every chosen variant
(OUT/predictions.jsonl, resumable), judges the predictions (OUT/judgments.jsonl, resumable),
optionally extracts cue keywords (OUT/keywords.jsonl), and writes OUT/results.json, results.md and
simrate.png. `report` merges results files into one table. Bad input is one line on stderr naming
the flag or file, exit code 2; a model server that stays unreachable is exit code 1 (a re-run
resumes where the run stopped).
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from agents.backends.chat import BackendError, ModelNotFound
from imagechain.recipe import Recipe, VariantModel, load_recipe, parse_judge
from schemas.errors import DataError
from vischain.error_lines import fail

console = Console(stderr=True, soft_wrap=True, highlight=False)


def _choose_variants(recipe: Recipe, flag: str | None) -> dict[str, VariantModel]:
    if not flag:
        return recipe.variants
    from imagechain.conversation import VARIANTS

    chosen = {}
    for name in (n.strip() for n in flag.split(",") if n.strip()):
        if name not in VARIANTS:
            raise DataError(f"--variants: unknown variant {name!r}; known: {', '.join(VARIANTS)}")
        chosen[name] = recipe.variants.get(name, VariantModel(recipe.model))
    if not chosen:
        raise DataError("--variants: name at least one variant")
    return chosen


def _load_stories(recipe: Recipe, variants: dict[str, VariantModel]):
    from imagechain.sources import iter_stories

    stories = []
    for story in iter_stories(recipe.source, bucket=recipe.bucket, split=recipe.split):
        if recipe.limit is not None and len(stories) >= recipe.limit:
            break
        stories.append(story)
    if not stories:
        raise DataError(f"{recipe.source}: no {recipe.split} stories in bucket {recipe.bucket}")
    pool = []
    if "MLLM-ICL" in variants:
        for story in iter_stories(recipe.source, bucket=recipe.icl["bucket"], split="train"):
            if len(pool) >= recipe.icl["limit"]:
                break
            pool.append(story)
    return stories, pool


def _open_runs(recipe: Recipe, variants: dict[str, VariantModel]):
    from imagechain.generate import VariantRun
    from imagechain.local_backend import open_generator

    opened = {}  # variants sharing a model and adapter share one loaded model
    runs = []
    for name, spec in variants.items():
        if spec not in opened:
            opened[spec] = open_generator(spec.model, spec.adapter, recipe.device)
        runs.append(VariantRun(variant=name, backend=opened[spec], model=spec.label))
    return runs, list(opened.values())


def _open_judge(judge: dict):
    if judge["kind"] == "embedding":
        from imagechain.embedding_judge import DEFAULT_THRESHOLD, EmbeddingJudge

        return EmbeddingJudge(threshold=float(judge.get("threshold", DEFAULT_THRESHOLD))), None
    from agents.backends.factory import open_backend, parse_model_arg
    from imagechain.simrate import LLMJudge

    backend = open_backend(parse_model_arg(judge["model"]))
    return LLMJudge(backend), backend


def _progress(what: str, total: int):
    """A callback printing `what done/total` about every 5% (long GPU runs need a sign of life)."""
    step = max(1, total // 20)
    return lambda done: console.print(f"  {what}: {done}/{total}") if done % step == 0 or done == total else None


async def _generate(recipe: Recipe, variants: dict[str, VariantModel], stories: list, pool: list):
    # The generators are local to this call, so in-process models are freed before the judge loads.
    from imagechain.generate import generate_predictions

    runs, backends = _open_runs(recipe, variants)
    try:
        return await generate_predictions(stories, runs, recipe.out, recipe.generation, pool, recipe.concurrency,
                                          _progress("predictions", len(stories) * len(runs)))
    finally:
        for backend in backends:
            await backend.aclose()


async def _run(recipe: Recipe, variants: dict[str, VariantModel]) -> dict:
    from imagechain.report import build_results

    stories, pool = _load_stories(recipe, variants)
    console.print(f"{len(stories)} {recipe.split} stories in {recipe.bucket}; variants: {', '.join(variants)}")
    summary = await _generate(recipe, variants, stories, pool)
    console.print(f"predictions: {summary.generated} new, {summary.resumed} resumed, {summary.too_long} too long, "
                  f"{len(summary.errors)} errors -> {recipe.out / 'predictions.jsonl'}")
    for line in summary.errors[:3]:
        console.print(f"  error: {line}", highlight=False)
    judge_info, judgments = await _judge(recipe, summary.records)
    meta = {"recipe": recipe.name, "source": recipe.source, "split": recipe.split, "bucket": recipe.bucket,
            "generation": recipe.generation.as_dict(), "stories": len(stories)}
    results = build_results(summary.records, judgments, judge_info, meta)
    if recipe.cue_f1:
        await _cue_f1(recipe, summary.records, results)
    return results


async def _judge(recipe: Recipe, records: list[dict]) -> tuple[dict, dict]:
    if recipe.judge["kind"] == "none":
        return {"kind": "none", "name": "none", "paper_metric": False, "note": "no judge: predictions only"}, {}
    from imagechain.simrate import judge_predictions

    judge, backend = _open_judge(recipe.judge)
    try:
        summary = await judge_predictions(records, judge, recipe.out, recipe.concurrency,
                                          _progress("judgments", sum(r.get("status") == "ok" for r in records)))
    finally:
        if backend is not None:
            await backend.aclose()
    console.print(f"judgments ({judge.name}): {summary.judged} new, {summary.resumed} resumed, "
                  f"{summary.unparseable} unparseable (counted as No)")
    return judge.info(), summary.judgments


async def _cue_f1(recipe: Recipe, records: list[dict], results: dict) -> None:
    from agents.backends.factory import open_backend, parse_model_arg
    from imagechain.cue_f1 import EXTRACTION_PROMPT, CueGraphs, extract_all, score_record
    from imagechain.report import add_cue_f1

    settings = recipe.cue_f1
    graphs = CueGraphs(behaviour=_graph(settings.get("behaviour_graph"), "behaviour"),
                       object=_graph(settings.get("object_graph"), "object"))
    template = Path(settings["prompt_file"]).read_text(encoding="utf-8") if settings.get("prompt_file") \
        else EXTRACTION_PROMPT
    backend = open_backend(parse_model_arg(settings["extractor"]))
    try:
        found = await extract_all(records, backend, recipe.out, template, recipe.concurrency)
    finally:
        await backend.aclose()
    scored = {pid: score_record(record, graphs, bool(settings["compat"])) for pid, record in found.items()}
    add_cue_f1(results, records, scored, {**settings, "extractor_model": backend.model_id})


def _graph(path: str | None, kind: str):
    from imagechain.synonyms import SynonymGraph

    # No graph: exact keyword matches only.
    return SynonymGraph.load(path) if path else SynonymGraph(kind=kind)


def eval_command(
    recipe: Annotated[Path, typer.Option(help="The recipe YAML (see imagechain/recipes/).")],
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
    from imagechain.report import markdown, write_report

    if recipe.suffix not in (".yaml", ".yml"):
        fail(f"--recipe: expected a .yaml file, got {recipe}")
    try:
        spec = load_recipe(recipe)
        spec.judge = parse_judge(judge, "--judge") if judge is not None else spec.judge
        spec.out, spec.limit = out or spec.out, limit or spec.limit
        if greedy:
            spec.generation = dataclasses.replace(spec.generation, greedy=True)
        chosen = _choose_variants(spec, variants)
        if spec.judge["kind"] == "embedding":  # a missing package fails now, not after generating
            from imagechain.embedding_judge import packaged_model_path

            packaged_model_path()
        results = asyncio.run(_run(spec, chosen))
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
    from imagechain.report import load_results, markdown, write_report

    try:
        loaded = [load_results(path) for path in results]
        if out is not None:
            write_report(loaded, out, paper)
    except DataError as err:
        fail(str(err))
    typer.echo(markdown(loaded, paper))
