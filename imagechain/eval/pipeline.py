"""One evaluation run, as `imagechain eval` makes it: predictions, judgments, optional cue F1, results.

Every step writes its records as it goes under the recipe's `out` (predictions.jsonl,
judgments.jsonl, keywords.jsonl) and resumes from them, so a killed run started again sends only
what is missing. The in-process models of the predictions are closed before the judge loads.

Models. A variant whose model runs in this process is answered by the scene-feature generator
(imagechain.eval.scene_generator): fine-tuned variants see each scene as the recipe's
`scene_visual` says, the others one representative frame, all in the recipe's `image_mode`. A
variant served over HTTP gets one representative frame per scene through its chat backend.

Progress goes through a `Progress` (lines for a log by default; the command line draws bars).

    results = asyncio.run(run_evaluation(recipe, recipe.variants))
    write_report([results], recipe.out)
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from agents.backends.chat import ChatModel
from agents.backends.factory import open_backend
from imagechain.data.sources import iter_stories
from imagechain.data.story import Story
from imagechain.eval.config import EvalRecipe, JudgeSettings, VariantModel
from imagechain.eval.cue_f1 import EXTRACTION_PROMPT, CueGraphs, extract_all, score_record
from imagechain.eval.embedding_judge import DEFAULT_THRESHOLD, EmbeddingJudge
from imagechain.eval.predict import PredictionRecord, PredictionSummary, VariantRun, predict_stories
from imagechain.eval.report import add_cue_f1, build_results
from imagechain.eval.simrate import Judge, JudgeInfo, JudgmentRecord, LLMJudge, judge_predictions
from imagechain.eval.synonyms import SynonymGraph
from imagechain.train.config import TRAIN_SETTINGS_FILE
from schemas.errors import DataError

NO_JUDGE: JudgeInfo = {"kind": "none", "name": "none", "paper_metric": False, "note": "no judge: predictions only"}


class Progress(Protocol):
    """Where a run reports: one line per step, and a counter per long step."""

    def say(self, line: str) -> None: ...

    def bar(self, what: str, total: int) -> contextlib.AbstractContextManager[Callable[[int], None]]:
        """A context whose value is called with the number of items done so far."""
        ...


class LineProgress:
    """Progress as plain lines: `what: done/total` about every 5% (long GPU runs need a sign of life)."""

    def __init__(self, say: Callable[[str], object] = print):
        self._say = say

    def say(self, line: str) -> None:
        self._say(line)

    @contextlib.contextmanager
    def bar(self, what: str, total: int) -> Iterator[Callable[[int], None]]:
        step = max(1, total // 20)

        def tick(done: int) -> None:
            if done % step == 0 or done == total:
                self._say(f"  {what}: {done}/{total}")

        yield tick


async def run_evaluation(recipe: EvalRecipe, variants: dict[str, VariantModel],
                         progress: Progress | None = None) -> dict:
    """Predict, judge and (with `cue_f1`) score `variants` on the recipe's stories; the results dict."""
    progress = progress or LineProgress()
    recipe.check_variants(variants, "--variants")
    stories, pool = load_stories(recipe, variants)
    progress.say(f"{len(stories)} {recipe.split} stories in {recipe.bucket}; variants: {', '.join(variants)}")
    with progress.bar("predictions", len(stories) * len(variants)) as tick:
        summary = await _predict(recipe, variants, stories, pool, tick)
    say_predictions(progress, summary, recipe.out)
    judge_info, judgments = await _judge(recipe, summary.records, progress)
    meta = {"recipe": recipe.name, "source": recipe.source, "split": recipe.split, "bucket": recipe.bucket,
            "generation": recipe.generation.as_dict(), "scene_visual": recipe.scene_visual,
            "image_mode": recipe.image_mode, "stories": len(stories)}
    results = build_results(summary.records, judgments, judge_info, meta)
    if recipe.cue_f1:
        await _cue_f1(recipe, summary.records, results, progress)
    return results


def say_predictions(progress: Progress, summary: PredictionSummary, out: Path) -> None:
    progress.say(f"predictions: {summary.generated} new, {summary.resumed} resumed, {summary.too_long} too long, "
                 f"{len(summary.errors)} errors -> {out / 'predictions.jsonl'}")
    for line in summary.errors[:3]:
        progress.say(f"  error: {line}")


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
    backend = open_backend(settings.model)
    return LLMJudge(backend), backend


def open_variant_model(name: str, variant: VariantModel, recipe: EvalRecipe) -> ChatModel:
    """The backend that answers `variant`: the scene-feature generator in process, else its chat backend."""
    if not variant.in_process:
        return open_backend(variant.model)
    if variant.adapter:
        check_adapter(name, variant.adapter, recipe.image_mode)
    # here: it imports torch and transformers; `imagechain --help` imports this module
    from imagechain.eval.scene_generator import SceneFeatureGenerator

    return SceneFeatureGenerator(variant.model.model, variant.adapter, variant.model.device, recipe.image_mode)


def check_adapter(name: str, adapter: str, image_mode: str) -> None:
    """An adapter trained in one image mode shows its model other features in another: refused."""
    settings = Path(adapter) / TRAIN_SETTINGS_FILE
    if not settings.is_file():
        return  # an adapter from elsewhere: nothing recorded to compare
    try:
        trained = json.loads(settings.read_text(encoding="utf-8")).get("image_mode", "native")
    except (OSError, json.JSONDecodeError, AttributeError):
        raise DataError(f"{settings}: not a JSON object of training settings") from None
    if trained != image_mode:
        raise DataError(f"variants.{name}.adapter: trained with image_mode {trained} ({settings}); the recipe "
                        f"evaluates with image_mode {image_mode}")


async def _predict(recipe: EvalRecipe, variants: dict[str, VariantModel], stories: list[Story], pool: list[Story],
                   tick: Callable[[int], None]) -> PredictionSummary:
    async with variant_runs(recipe, variants) as runs:
        return await predict_stories(stories, runs, recipe.out, recipe.generation, pool, recipe.concurrency, tick)


@contextlib.asynccontextmanager
async def variant_runs(recipe: EvalRecipe, variants: dict[str, VariantModel]):
    """One VariantRun per variant, variants sharing a model and adapter sharing one loaded model; the
    models are closed on the way out, so in-process ones are freed before the judge loads."""
    opened: dict[VariantModel, ChatModel] = {}
    runs = []
    try:
        for name, variant in variants.items():
            if variant not in opened:
                opened[variant] = open_variant_model(name, variant, recipe)
            runs.append(VariantRun(variant=name, backend=opened[variant], model=variant.label,
                                   scene_visual=recipe.scene_visual_of(name)))
        yield runs
    finally:
        for backend in opened.values():
            await backend.aclose()


async def _judge(recipe: EvalRecipe, records: list[PredictionRecord],
                 progress: Progress) -> tuple[JudgeInfo, dict[str, JudgmentRecord]]:
    if recipe.judge.kind == "none":
        return NO_JUDGE, {}
    judge, backend = open_judge(recipe.judge)
    try:
        with progress.bar("judgments", sum(r.get("status") == "ok" for r in records)) as tick:
            summary = await judge_predictions(records, judge, recipe.out, recipe.concurrency, tick)
    finally:
        if backend is not None:
            await backend.aclose()
    progress.say(f"judgments ({judge.name}): {summary.judged} new, {summary.resumed} resumed, "
                 f"{summary.unparseable} unparseable (counted as No)")
    return judge.info(), summary.judgments


async def _cue_f1(recipe: EvalRecipe, records: list[PredictionRecord], results: dict, progress: Progress) -> None:
    settings = recipe.cue_f1
    graphs = CueGraphs(behaviour=load_graph(settings.behaviour_graph, "behaviour"),
                       object=load_graph(settings.object_graph, "object"))
    found, extractor = await extract_keywords(recipe, records, progress)
    scored = {pid: score_record(record, graphs, settings.compat) for pid, record in found.items()}
    add_cue_f1(results, records, scored, {**settings.as_record(), "extractor_model": extractor})


async def extract_keywords(recipe: EvalRecipe, records: list[PredictionRecord],
                           progress: Progress) -> tuple[dict, str]:
    """Keyword records of every `ok` prediction (resumed from keywords.jsonl), and the extractor's name."""
    settings = recipe.cue_f1
    template = Path(settings.prompt_file).read_text(encoding="utf-8") if settings.prompt_file else EXTRACTION_PROMPT
    backend = open_backend(settings.extractor)
    try:
        with progress.bar("cue keywords", sum(r.get("status") == "ok" for r in records)) as tick:
            found = await extract_all(records, backend, recipe.out, template, recipe.concurrency, tick)
    finally:
        await backend.aclose()
    failed = sum(1 for record in found.values() if record.get("lists") is None)
    progress.say(f"cue keywords ({backend.model_id}): {len(found)} predictions, {failed} failed extractions")
    return found, backend.model_id


def load_graph(path: str | Path | None, kind: str) -> SynonymGraph:
    # No graph: exact keyword matches only.
    return SynonymGraph.load(path) if path else SynonymGraph(kind=kind)
