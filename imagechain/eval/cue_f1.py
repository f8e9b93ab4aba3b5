"""Cue F1: the Mementos keyword procedure the ImageChain paper uses for Table 3.

1. Extraction: one LLM call per sample gets both texts and returns four keyword lists as JSON
   (schema `EXTRACTION_SCHEMA`, sent as structured output): objects and behaviours of the
   reference, objects and behaviours of the prediction; the LLM is asked to use one word for one
   thing across all four lists. The prompt is ours (`EXTRACTION_PROMPT`, same contract as
   Mementos'); `prompt_file` replaces it with a file of yours holding {reference} and {prediction}.
   Keywords are stripped, whitespace-collapsed and lower-cased; empty ones are dropped. A reply
   that is not schema-valid JSON is a failed extraction: skipped and counted (Mementos skips such
   samples silently).
2. Synonyms: predicted keywords are mapped onto reference keywords through the domain's synonym
   graph (`imagechain.eval.synonyms`), behaviours with pair lookups, objects with single lookups.
3. Per sample, on sets: TP = |ref & pred'|, FP = |pred' - ref|, FN = |ref - pred'|; precision,
   recall and F1 with 0 for a zero denominator (as Mementos does, so an empty reference scores 0).
4. Macro average: the mean of the per-sample precision, recall and F1 (F1 is not recomputed from
   the mean P and R). `compat=True` keeps the notebook's leftover quirk (see imagechain.eval.synonyms).

Records of step 1 go to `keywords.jsonl`, one per (extractor, prompt, prediction): a re-run costs
no extraction calls for samples already done.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from agents.backends.chat import ChatModel, SamplingParams
from agents.backends.structured import parse_json_reply
from imagechain.eval.jsonl_store import JsonlStore
from imagechain.eval.predict import PredictionRecord, prediction_id
from imagechain.eval.synonyms import SynonymGraph, map_to_reference

LISTS = ("reference_objects", "reference_behaviours", "prediction_objects", "prediction_behaviours")
EXTRACTION_SCHEMA = {
    "title": "cue_keywords", "type": "object", "additionalProperties": False, "required": list(LISTS),
    "properties": {name: {"type": "array", "items": {"type": "string"}} for name in LISTS},
}
EXTRACTION_PROMPT = (
    "Below are two descriptions of the same scene. REFERENCE was written by a person; PREDICTION was "
    "written by a model.\n"
    "From each description, list:\n"
    "- objects: concrete, visible things it mentions (people, animals, items, places), at most two words "
    "each, singular;\n"
    "- behaviours: the actions or events those objects take part in, as short verb phrases in their base "
    "form (\"pick up\", \"fall\", \"walk away\").\n"
    "When the two descriptions use different words for the same object or the same action, write that "
    "object or action with one and the same word in every list. Skip abstract notions. Use lower case.\n"
    "Answer only with a JSON object with the keys reference_objects, reference_behaviours, "
    "prediction_objects and prediction_behaviours, each a list of strings.\n\n"
    "REFERENCE: {reference}\n"
    "PREDICTION: {prediction}\n"
)
KEYWORDS_KEY = ("extractor", "prompt_sha256", "prediction_id")


class KeywordLists(TypedDict):
    """The extractor's four lists, normalised (EXTRACTION_SCHEMA)."""

    reference_objects: list[str]
    reference_behaviours: list[str]
    prediction_objects: list[str]
    prediction_behaviours: list[str]


class KeywordsRecord(TypedDict):
    """One line of keywords.jsonl: one extraction, keyed by (extractor, prompt, prediction)."""

    extractor: str
    prompt_sha256: str
    prediction_id: str
    variant: str
    story_id: str
    lists: KeywordLists | None
    """None for a failed extraction (a reply that is not schema-valid JSON)."""
    raw: str | None
    """The reply of a failed extraction; None otherwise."""


class MacroScores(TypedDict):
    """Mean per-sample scores in percent (2 decimals); None when n is 0."""

    n: int
    precision: float | None
    recall: float | None
    f1: float | None


@dataclass(frozen=True)
class Scores:
    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float


def set_scores(reference: Sequence, mapped: Sequence) -> Scores:
    """Set precision / recall / F1 of mapped predictions against reference keywords (0 on 0/0)."""
    ref, pred = set(reference), set(mapped)
    tp, fp, fn = len(ref & pred), len(pred - ref), len(ref - pred)
    recall = tp / (tp + fn) if tp + fn else 0.0
    precision = tp / (tp + fp) if tp + fp else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Scores(tp, fp, fn, precision, recall, f1)


def sample_scores(reference: list[str], prediction: list[str], graph: SynonymGraph, compat: bool = False) -> Scores:
    return set_scores(reference, map_to_reference(reference, prediction, graph, compat))


def macro(scores: Sequence[Scores]) -> MacroScores:
    """Mean precision, recall and F1 over samples (percent, 2 decimals), with n; None values when n is 0."""
    n = len(scores)
    mean = (lambda name: round(100.0 * sum(getattr(s, name) for s in scores) / n, 2)) if n else (lambda name: None)
    return {"n": n, "precision": mean("precision"), "recall": mean("recall"), "f1": mean("f1")}


def normalise(words: Sequence[str]) -> list[str]:
    cleaned = (" ".join(str(w).split()).lower() for w in words)
    return [w for w in cleaned if w]


def extraction_messages(reference: str, prediction: str, template: str = EXTRACTION_PROMPT) -> list[dict]:
    text = template.replace("{reference}", reference).replace("{prediction}", prediction)
    return [{"role": "user", "content": [{"type": "text", "text": text}]}]


async def extract_keywords(backend: ChatModel, reference: str, prediction: str,
                           template: str = EXTRACTION_PROMPT) -> tuple[KeywordLists | None, str]:
    """(the four normalised lists, or None when the reply is not schema-valid JSON; the raw reply)."""
    params = SamplingParams(max_tokens=1000, temperature=0.0)  # Mementos' budget and temperature
    result = await backend.chat(extraction_messages(reference, prediction, template), schema=EXTRACTION_SCHEMA,
                                params=params)
    try:
        value = parse_json_reply(result.text, EXTRACTION_SCHEMA)
    except ValueError:
        return None, result.text
    return {name: normalise(value[name]) for name in LISTS}, result.text


@dataclass
class CueGraphs:
    behaviour: SynonymGraph
    object: SynonymGraph


def score_record(record: KeywordsRecord, graphs: CueGraphs, compat: bool) -> dict[str, Scores] | None:
    """{"behaviour": Scores, "object": Scores} of one keywords record; None for a failed extraction."""
    lists = record.get("lists")
    if lists is None:
        return None
    return {"behaviour": sample_scores(lists["reference_behaviours"], lists["prediction_behaviours"],
                                       graphs.behaviour, compat),
            "object": sample_scores(lists["reference_objects"], lists["prediction_objects"], graphs.object, compat)}


async def extract_all(predictions: Sequence[PredictionRecord], backend: ChatModel, out: Path,
                      template: str = EXTRACTION_PROMPT, concurrency: int = 8,
                      progress: Callable[[int], None] | None = None) -> dict[str, KeywordsRecord]:
    """prediction_id -> keywords record for every `ok` prediction; new extractions go to OUT/keywords.jsonl."""
    store = JsonlStore(out / "keywords.jsonl", KEYWORDS_KEY)
    prompt_sha = hashlib.sha256(template.encode()).hexdigest()
    slots = asyncio.Semaphore(concurrency)
    found: dict[str, KeywordsRecord] = {}

    async def one(prediction: PredictionRecord) -> None:
        key = {"extractor": backend.model_id, "prompt_sha256": prompt_sha, "prediction_id": prediction_id(prediction)}
        record = store.get(key)
        if record is None:
            async with slots:
                lists, raw = await extract_keywords(backend, prediction["reference"], prediction["text"], template)
            record = {**key, "variant": prediction["variant"], "story_id": prediction["story_id"], "lists": lists,
                      "raw": None if lists else raw}
            store.append(record)
        found[key["prediction_id"]] = record
        if progress:
            progress(len(found))

    await asyncio.gather(*(one(p) for p in predictions if p.get("status") == "ok"))
    return found
