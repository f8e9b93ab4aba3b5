"""One evaluation run, as `imagechain eval` makes it: predictions, judgments, optional cue F1, results.

Every step writes its records as it goes under the recipe's `out` (predictions.jsonl,
judgments.jsonl, keywords.jsonl) and resumes from them, so a killed run started again sends only
what is missing. The in-process models of the predictions are closed before the judge loads.

    results = asyncio.run(run_evaluation(recipe, recipe.variants, say=print))
    write_report([results], recipe.out)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from agents.backends.chat import ChatModel
from agents.backends.factory import open_backend, parse_model_arg
from imagechain.data.sources import iter_stories
from imagechain.data.story import Story
from imagechain.eval.config import EvalRecipe, JudgeSettings, VariantModel
from imagechain.eval.cue_f1 import EXTRACTION_PROMPT, CueGraphs, extract_all, score_record
from imagechain.eval.embedding_judge import DEFAULT_THRESHOLD, EmbeddingJudge
from imagechain.eval.local_backend import open_generator
from imagechain.eval.predict import PredictionRecord, PredictionSummary, VariantRun, predict_stories
from imagechain.eval.report import add_cue_f1, build_results
from imagechain.eval.simrate import Judge, JudgeInfo, JudgmentRecord, LLMJudge, judge_predictions
from imagechain.eval.synonyms import SynonymGraph
from schemas.errors import DataError

NO_JUDGE: JudgeInfo = {"kind": "none", "name": "none", "paper_metric": False, "note": "no judge: predictions only"}


async def run_evaluation(recipe: EvalRecipe, variants: dict[str, VariantModel],
                         say: Callable[[str], object] = print) -> dict:
    """Predict, judge and (with `cue_f1`) score `variants` on the recipe's stories; the results dict.

    `say` gets one line per step and progress lines about every 5% of a long step."""
    stories, pool = load_stories(recipe, variants)
    say(f"{len(stories)} {recipe.split} stories in {recipe.bucket}; variants: {', '.join(variants)}")
    summary = await _predict(recipe, variants, stories, pool, say)
    say(f"predictions: {summary.generated} new, {summary.resumed} resumed, {summary.too_long} too long, "
        f"{len(summary.errors)} errors -> {recipe.out / 'predictions.jsonl'}")
    for line in summary.errors[:3]:
        say(f"  error: {line}")
    judge_info, judgments = await _judge(recipe, summary.records, say)
    meta = {"recipe": recipe.name, "source": recipe.source, "split": recipe.split, "bucket": recipe.bucket,
            "generation": recipe.generation.as_dict(), "stories": len(stories)}
    results = build_results(summary.records, judgments, judge_info, meta)
    if recipe.cue_f1:
        await _cue_f1(recipe, summary.records, results)
    return results


def load_stories(recipe: EvalRecipe, variants: dict[str, VariantModel]) -> tuple[list[Story], list[Story]]:
    """The stories to evaluate (at most `limit`), and MLLM-ICL's demonstration pool when it runs."""
    stories = []
    for story in iter_stories(recipe.source, bucket=recipe.bucket, split=recipe.split):
        if recipe.limit is not None and len(stories) >= recipe.limit:
            break
        stories.append(story)
    if not stories:
        raise DataError(f"{recipe.source}: no {recipe.split} stories in bucket {recipe.bucket}")
    pool = []
    if "MLLM-ICL" in variants:
        for story in iter_stories(recipe.source, bucket=recipe.icl.bucket, split="train"):
            if len(pool) >= recipe.icl.limit:
                break
            pool.append(story)
    return stories, pool


def open_judge(settings: JudgeSettings) -> tuple[Judge, ChatModel | None]:
    """The judge, and the backend to close after judging (None for the embedding judge)."""
    if settings.kind == "embedding":
        threshold = DEFAULT_THRESHOLD if settings.threshold is None else float(settings.threshold)
        return EmbeddingJudge(threshold=threshold), None
    backend = open_backend(parse_model_arg(settings.model))
    return LLMJudge(backend), backend


def progress(say: Callable[[str], object], what: str, total: int) -> Callable[[int], None]:
    """A callback saying `what done/total` about every 5% (long GPU runs need a sign of life)."""
    step = max(1, total // 20)

    def tick(done: int) -> None:
        if done % step == 0 or done == total:
            say(f"  {what}: {done}/{total}")

    return tick


async def _predict(recipe: EvalRecipe, variants: dict[str, VariantModel], stories: list[Story], pool: list[Story],
                   say: Callable[[str], object]) -> PredictionSummary:
    # The generators are local to this call, so in-process models are freed before the judge loads.
    opened: dict[VariantModel, ChatModel] = {}  # variants sharing a model and adapter share one loaded model
    runs = []
    try:
        for name, spec in variants.items():
            if spec not in opened:
                opened[spec] = open_generator(spec.model, spec.adapter, recipe.device)
            runs.append(VariantRun(variant=name, backend=opened[spec], model=spec.label))
        return await predict_stories(stories, runs, recipe.out, recipe.generation, pool, recipe.concurrency,
                                     progress(say, "predictions", len(stories) * len(runs)))
    finally:
        for backend in opened.values():
            await backend.aclose()


async def _judge(recipe: EvalRecipe, records: list[PredictionRecord],
                 say: Callable[[str], object]) -> tuple[JudgeInfo, dict[str, JudgmentRecord]]:
    if recipe.judge.kind == "none":
        return NO_JUDGE, {}
    judge, backend = open_judge(recipe.judge)
    try:
        summary = await judge_predictions(records, judge, recipe.out, recipe.concurrency,
                                          progress(say, "judgments", sum(r.get("status") == "ok" for r in records)))
    finally:
        if backend is not None:
            await backend.aclose()
    say(f"judgments ({judge.name}): {summary.judged} new, {summary.resumed} resumed, "
        f"{summary.unparseable} unparseable (counted as No)")
    return judge.info(), summary.judgments


async def _cue_f1(recipe: EvalRecipe, records: list[PredictionRecord], results: dict) -> None:
    settings = recipe.cue_f1
    graphs = CueGraphs(behaviour=_graph(settings.behaviour_graph, "behaviour"),
                       object=_graph(settings.object_graph, "object"))
    template = Path(settings.prompt_file).read_text(encoding="utf-8") if settings.prompt_file else EXTRACTION_PROMPT
    backend = open_backend(parse_model_arg(settings.extractor))
    try:
        found = await extract_all(records, backend, recipe.out, template, recipe.concurrency)
    finally:
        await backend.aclose()
    scored = {pid: score_record(record, graphs, settings.compat) for pid, record in found.items()}
    add_cue_f1(results, records, scored, {**settings.as_record(), "extractor_model": backend.model_id})


def _graph(path: str | None, kind: str) -> SynonymGraph:
    # No graph: exact keyword matches only.
    return SynonymGraph.load(path) if path else SynonymGraph(kind=kind)
