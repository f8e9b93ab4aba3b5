"""The paper's Table 3: zero-shot cue F1 on Mementos (Comics, Daily-Life, Robo), `benchmark: mementos`.

Each Mementos sequence (imagechain.data.mementos) is one story of one scene per image, with one
human description of the whole sequence as the reference. How ImageChain turned a sequence into a
prompt is not published; ours, per variant (INFERRED from the paper's Figure 6, where ImageChain's
answer reads as one description per image while MLLM-FT's reads as one description of one scene):
- MLLM, MLLM-FT, VisualContext: one user turn with every image and the VisualContext wording
  (Mementos has no per-image descriptions, so the description-carrying MLLM form has nothing to carry);
- FinalScene: the last image only;
- ImageChain: the multi-turn chain, answered turn by turn: image t with "What is happening in this
  image?" (t = 1) or "... in the next image?", and the model's own answer as the assistant turn
  before image t + 1. `mementos.chain_output: concatenate` (default) joins the turn answers into
  the description that is scored, as Figure 6 shows; `last` keeps only the final turn's answer.
MLLM-ICL and ImageChain-NoFT are not rows of Table 3 and are refused by the recipe.

Scoring is the Mementos procedure (imagechain.eval.cue_f1): keyword lists from an extractor LLM,
each domain's synonym graphs (`cue_f1.graphs`, converted from Mementos' pickles by
`imagechain data convert-synonyms`), macro F1 per domain. Table 3 reports behaviour F1; object F1
is printed under it. Predictions (predictions.jsonl) and keywords (keywords.jsonl) resume as
Table 1's do.

    results = asyncio.run(run_mementos_evaluation(recipe, recipe.variants))
    print(mementos_markdown([results], paper=True))
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from agents.backends.chat import BackendError, ContextOverflow, EndpointUnavailable
from imagechain.data.conversation import build_conversation
from imagechain.data.mementos import DOMAINS, read_sequences, sequence_story
from imagechain.data.story import Story
from imagechain.eval.config import EvalRecipe, VariantModel
from imagechain.eval.cue_f1 import CueGraphs, macro, score_record
from imagechain.eval.jsonl_store import JsonlStore
from imagechain.eval.pipeline import Progress, extract_keywords, load_graph, say_predictions, variant_runs
from imagechain.eval.predict import (
    FINISHED,
    PREDICTION_KEY,
    PredictionRecord,
    PredictionSettings,
    PredictionSummary,
    VariantRun,
    base_record,
    for_each_story,
    prediction_id,
    prompt_hash,
    prompt_messages,
)
from imagechain.eval.report import MEMENTOS_RESULTS_KIND
from imagechain.eval.synonyms import SynonymGraph
from schemas.errors import DataError

CHAIN_VARIANTS = ("ImageChain",)
# Which conversation form each Table 3 row uses (module docstring).
FORM_OF = {"MLLM": "VisualContext", "MLLM-FT": "VisualContext", "VisualContext": "VisualContext",
           "FinalScene": "FinalScene", "ImageChain": "ImageChain"}
# The paper's Table 3 (behaviour F1 %, Comics / DL / Robo). The PDF's row labels are lost in our copy
# of the text; they follow from section 6.1's prose (Gemini 16.3 on Comics, FinalScene 26.5 on DL,
# MLLM 15.2, MLLM-FT 14.4, VisualContext 27.8 and ImageChain 27.1 on Robo), GPT-4V is the first row.
PAPER_TABLE3 = {
    "GPT-4V": (18.1, 33.6, 34.0),
    "Gemini": (16.3, 21.6, 39.4),
    "MLLM": (13.3, 23.5, 15.2),
    "MLLM-FT": (13.0, 18.4, 14.4),
    "VisualContext": (11.2, 18.3, 27.8),
    "FinalScene": (13.4, 26.5, 19.0),
    "ImageChain": (16.2, 20.8, 27.1),
}
PAPER_COLUMNS = ("comics", "dl", "robo")


def load_domain_stories(recipe: EvalRecipe) -> dict[str, list[Story]]:
    """domain -> its sequences as stories (at most `limit` per domain)."""
    settings = recipe.mementos
    return {domain: [sequence_story(s) for s in read_sequences(recipe.source, domain, recipe.split, settings.images,
                                                              settings.input, recipe.limit)]
            for domain in settings.domains}


async def run_mementos_evaluation(recipe: EvalRecipe, variants: dict[str, VariantModel],
                                  progress: Progress) -> dict:
    """Predict every sequence under every variant, extract cue keywords, score per domain; the results dict."""
    recipe.check_variants(variants, "--variants")
    unknown = sorted(set(variants) - set(FORM_OF))
    if unknown:
        raise DataError(f"--variants: {unknown[0]} is not a row of Table 3; rows: {', '.join(FORM_OF)}")
    graphs = recipe.cue_f1.graphs
    if graphs and not Path(graphs).is_dir():
        raise DataError(f"cue_f1.graphs: folder not found: {graphs} (`imagechain data convert-synonyms` writes it)")
    by_domain = load_domain_stories(recipe)
    stories = [story for domain in by_domain.values() for story in domain]
    counts = ", ".join(f"{domain} {len(items)}" for domain, items in by_domain.items())
    progress.say(f"{len(stories)} Mementos {recipe.split} sequences ({counts}); variants: {', '.join(variants)}")
    with progress.bar("predictions", len(stories) * len(variants)) as tick:
        summary = await _predict(recipe, variants, stories, tick)
    say_predictions(progress, summary, recipe.out)
    found, extractor = await extract_keywords(recipe, summary.records, progress)
    return build_mementos_results(recipe, summary.records, found, extractor)


async def _predict(recipe: EvalRecipe, variants: dict[str, VariantModel], stories: list[Story],
                   tick: Callable[[int], None]) -> PredictionSummary:
    async with variant_runs(recipe, variants) as runs:
        return await predict_sequences(stories, runs, recipe.out, recipe.generation, recipe.mementos.chain_output,
                                       recipe.concurrency, tick)


async def predict_sequences(stories: Sequence[Story], runs: Sequence[VariantRun], out: Path,
                            settings: PredictionSettings = PredictionSettings(), chain_output: str = "concatenate",
                            concurrency: int = 4, progress: Callable[[int], None] | None = None
                            ) -> PredictionSummary:
    """Every sequence under every run into OUT/predictions.jsonl; chain variants answer turn by turn."""
    store = JsonlStore(out / "predictions.jsonl", PREDICTION_KEY, accept=lambda r: r.get("status") in FINISHED)
    summary = PredictionSummary()
    await for_each_story(stories, runs, lambda story, run: predict_sequence(story, run, store, settings, out / "frames",
                                                                             chain_output, summary),
                         concurrency, progress)
    return summary


async def predict_sequence(story: Story, run: VariantRun, store: JsonlStore, settings: PredictionSettings,
                           frames_dir: Path, chain_output: str, summary: PredictionSummary) -> None:
    """Predict (or resume) one sequence under one variant and append its record."""
    conversation = build_conversation(story, FORM_OF[run.variant])
    messages = prompt_messages(conversation, frames_dir, settings.frame, run.scene_visual, run.takes_frames)
    record: PredictionRecord = base_record(story, run, settings, prompt_hash(messages))
    record["domain"] = story.metadata["domain"]
    if run.variant in CHAIN_VARIANTS:
        record["params"]["chain_output"] = chain_output
    if store.done(record):
        summary.resumed += 1
        summary.records.append(store.get(record))
        return
    turns: list[str] = []
    try:
        if run.variant in CHAIN_VARIANTS:
            turns = await roll_out(run, messages, settings)
            text = " ".join(turns) if chain_output == "concatenate" else turns[-1]
        else:
            text = (await run.backend.chat(messages, params=settings.params())).text.strip()
        record.update(text=text, status="ok")
        summary.generated += 1
    except ContextOverflow as err:
        record.update(text=None, status="too_long", error=str(err))
        summary.too_long += 1
    except EndpointUnavailable:
        raise  # the server is gone: stop here; a re-run resumes
    except BackendError as err:
        record.update(text=None, status="error", error=str(err))
        summary.errors.append(f"{run.variant} {story.story_id}: {err}")
    if turns:
        record["turns"] = turns
    store.append(record)
    summary.records.append(record)


async def roll_out(run: VariantRun, messages: list[dict], settings: PredictionSettings) -> list[str]:
    """The chain answered turn by turn: each user turn is sent with the model's own earlier answers."""
    answers: list[str] = []
    sent: list[dict] = []
    for message in messages:
        if message["role"] == "assistant":  # the chain's empty context description: the model's answer goes here
            sent.append({"role": "assistant", "content": [{"type": "text", "text": answers[-1]}]})
            continue
        sent.append(message)
        if message["role"] == "user":
            result = await run.backend.chat(sent, params=settings.params())
            answers.append(result.text.strip())
    return answers


def domain_graphs(graphs_dir: str | None, domain: str) -> CueGraphs:
    """The domain's behaviour and object graphs from `cue_f1.graphs` (exact matches where a file is missing)."""
    def one(kind: str) -> SynonymGraph:
        path = Path(graphs_dir) / f"{domain}-{kind}.json" if graphs_dir else None
        graph = load_graph(path if path and path.is_file() else None, kind)
        if graph.kind != kind:
            raise DataError(f"{path}: a {graph.kind} graph where the {kind} graph belongs")
        return graph

    return CueGraphs(behaviour=one("behaviour"), object=one("object"))


def build_mementos_results(recipe: EvalRecipe, records: Sequence[PredictionRecord], found: dict,
                           extractor: str) -> dict:
    """Rows = variants, columns = domains; each cell: behaviour and object macro scores and the counts behind."""
    settings = recipe.cue_f1
    graphs = {domain: domain_graphs(settings.graphs, domain) for domain in recipe.mementos.domains}
    rows = []
    for variant, model in sorted({(r["variant"], r["model"]) for r in records},
                                 key=lambda key: (list(FORM_OF).index(key[0]), key[1])):
        cells = {}
        for domain in recipe.mementos.domains:
            mine = [r for r in records if r["variant"] == variant and r["model"] == model and r["domain"] == domain]
            scored = [score_record(found[prediction_id(r)], graphs[domain], settings.compat) for r in mine
                      if r.get("status") == "ok" and prediction_id(r) in found]
            ok = [s for s in scored if s is not None]
            cells[domain] = {"behaviour": macro([s["behaviour"] for s in ok]),
                             "object": macro([s["object"] for s in ok]), "predictions": len(mine),
                             "too_long": sum(r.get("status") == "too_long" for r in mine),
                             "errors": sum(r.get("status") == "error" for r in mine),
                             "failed_extractions": len(scored) - len(ok)}
        rows.append({"variant": variant, "model": model, "cells": cells})
    graph_files = {domain: {kind: bool(settings.graphs and (Path(settings.graphs) / f"{domain}-{kind}.json").is_file())
                            for kind in ("behaviour", "object")} for domain in recipe.mementos.domains}
    return {"kind": MEMENTOS_RESULTS_KIND, "version": 1, "recipe": recipe.name, "source": recipe.source,
            "split": recipe.split, "domains": list(recipe.mementos.domains),
            "mementos": {"input": recipe.mementos.input, "chain_output": recipe.mementos.chain_output},
            "generation": recipe.generation.as_dict(), "scene_visual": recipe.scene_visual,
            "image_mode": recipe.image_mode, "cue_f1": {**settings.as_record(), "extractor_model": extractor,
                                                         "graph_files": graph_files},
            "rows": rows}


def merge_mementos(all_results: Sequence[dict]) -> dict:
    """One Mementos results dict holding every row; a variant that appears twice is labelled by its model."""
    rows = [row for results in all_results for row in results["rows"]]
    variants = [row["variant"] for row in rows]
    for row in rows:
        row["label"] = row["variant"] + (f" [{row['model']}]" if variants.count(row["variant"]) > 1 else "")
    domains = list(dict.fromkeys(domain for results in all_results for domain in results["domains"]))
    return {"kind": MEMENTOS_RESULTS_KIND, "version": 1, "domains": domains, "rows": rows,
            "cue_f1": [results.get("cue_f1") for results in all_results]}


def _value(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def mementos_markdown(all_results: Sequence[dict], paper: bool = False) -> str:
    """Table 3's layout: behaviour F1 per domain with n under each row (and the paper's row), then object F1."""
    merged = merge_mementos(all_results)
    domains = merged["domains"]
    header = ["| Model | " + " | ".join(DOMAINS[d].title for d in domains) + " |", "|---|" + "---:|" * len(domains)]
    out = []
    for kind in ("behaviour", "object"):
        title = "Table 3: behaviour F1" if kind == "behaviour" else "object F1"
        out += [f"## Mementos cue F1 ({title}, macro %)", "", *header]
        for row in merged["rows"]:
            cells = [row["cells"].get(d) for d in domains]
            out.append(f"| {row.get('label', row['variant'])} | "
                       + " | ".join(_value(c[kind]["f1"]) if c else "-" for c in cells) + " |")
            out.append("| &nbsp;&nbsp;n | " + " | ".join(str(c[kind]["n"]) if c else "0" for c in cells) + " |")
            if paper and kind == "behaviour" and row["variant"] in PAPER_TABLE3:
                out.append("| &nbsp;&nbsp;paper | " + " | ".join(_paper(row["variant"], d) for d in domains) + " |")
        if paper and kind == "behaviour":
            for name in ("GPT-4V", "Gemini"):
                out.append(f"| {name} (paper) | " + " | ".join(_paper(name, d) for d in domains) + " |")
        out.append("")
    if paper:
        out.append("paper: ImageChain (arXiv 2502.19409) Table 3, zero-shot, LLaVA-v1.6-Vicuna-7B trained on "
                   "StoryFrames C2-7; GPT-4V and Gemini from Mementos (Wang et al., 2024).")
    notes = _notes(merged["rows"], domains)
    return "\n".join(out + ([""] + notes if notes else [])) + "\n"


def _paper(name: str, domain: str) -> str:
    return f"{PAPER_TABLE3[name][PAPER_COLUMNS.index(domain)]:.1f}"


def _notes(rows: Sequence[dict], domains: Sequence[str]) -> list[str]:
    notes = []
    for row in rows:
        totals = {key: sum(row["cells"][d][key] for d in domains if d in row["cells"])
                  for key in ("too_long", "errors", "failed_extractions")}
        parts = [f"{count} {key.replace('_', ' ')}" for key, count in totals.items() if count]
        if parts:
            notes.append(f"- {row.get('label', row['variant'])}: " + ", ".join(parts))
    if notes:
        notes.insert(0, "Not in n (too long for the model, a failed call, or an extraction that was not JSON):")
    return notes


def write_mementos_report(all_results: Sequence[dict], out: Path, paper: bool = False) -> dict[str, Path]:
    """results.json (merged) and results.md under `out`; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    merged = merge_mementos(all_results) if len(all_results) > 1 else all_results[0]
    paths = {"json": out / "results.json", "markdown": out / "results.md"}
    paths["json"].write_text(json.dumps(merged, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    paths["markdown"].write_text(mementos_markdown(all_results, paper), encoding="utf-8")
    return paths
