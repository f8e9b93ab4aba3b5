"""Evaluation recipes: one YAML file says what `imagechain eval` runs (`EvalRecipe`).

    name: tiny-eval
    source: data/StoryFrames        # StoryFrames folder, hub id, or a vischain run folder
    split: val                      # stories evaluated (val in the paper)
    bucket: C2-6                    # an evaluation bucket; columns C2 ... C2-6 are cut from it
    limit: 40                       # optional: at most this many stories
    out: runs/imagechain-eval/tiny  # optional; default runs/imagechain-eval/<name>
    model: tiny:llava-next          # the base model of every variant unless a variant names its own
    device: cpu
    variants:                       # a list of names, or name -> {model, adapter}
      MLLM: {}
      ImageChain: {adapter: runs/imagechain-train/imagechain-c2-7/adapter}
    generation: {temperature: 0.2, top_p: 0.1, max_new_tokens: 1024, seed: 30, greedy: false, frame: first}
    icl: {bucket: C2-6, limit: 200} # MLLM-ICL's demonstration pool: training stories
    judge: openai:meta-llama/Meta-Llama-3-70B-Instruct@http://localhost:8001/v1   # or embedding, none
    cue_f1:                         # optional: the Mementos keyword F1
      extractor: openai:...@...
      behaviour_graph: imagechain/synonyms/example-robo-behaviour.json
      object_graph: imagechain/synonyms/example-robo-object.json
      compat: false
    concurrency: 4

Relative paths are taken from the current directory. Model names use the --model forms
(tiny:NAME, a folder or hub id, transformers:ID, openai:NAME@URL).

    recipe = load_recipe("imagechain/recipes/eval/tiny-eval.yaml")
    recipe.judge.kind, recipe.generation.max_new_tokens
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal

import yaml

from imagechain.data.buckets import EVAL_BUCKETS, SPLITS, TRAIN_BUCKETS
from imagechain.data.conversation import VARIANTS
from imagechain.eval.predict import PredictionSettings
from schemas.errors import DataError

KNOWN = {"name", "source", "split", "bucket", "limit", "out", "model", "device", "variants", "generation", "icl",
         "judge", "cue_f1", "concurrency", "description"}
JUDGE_KINDS = ("none", "embedding", "llm")
CUE_F1_FIELDS = ("extractor", "behaviour_graph", "object_graph", "compat", "prompt_file")


@dataclass(frozen=True)
class VariantModel:
    model: str
    adapter: str | None = None

    @property
    def label(self) -> str:
        return f"{self.model}+{self.adapter}" if self.adapter else self.model


@dataclass(frozen=True)
class JudgeSettings:
    """Who judges SimRate: nobody, the embedding stand-in, or an LLM (the paper's judge)."""

    kind: Literal["none", "embedding", "llm"]
    model: str | None = None
    """The LLM judge's model (a --model form); only for kind llm."""
    threshold: float | None = None
    """The embedding judge's cosine threshold; None: its default."""


@dataclass(frozen=True)
class IclPool:
    """Where MLLM-ICL draws its demonstrations from: training stories of one bucket."""

    bucket: str = "C2-6"
    limit: int | None = 200
    """Read at most this many training stories into the pool."""


@dataclass(frozen=True)
class CueF1Settings:
    """The optional Mementos keyword F1 (imagechain.eval.cue_f1)."""

    extractor: str
    """The model that lists the keywords (a --model form)."""
    behaviour_graph: str | None = None
    """Synonym graph file for behaviours; None: exact matches only."""
    object_graph: str | None = None
    """Synonym graph file for objects; None: exact matches only."""
    compat: bool = False
    """Count all leftover predictions as one false positive, as the original notebook does."""
    prompt_file: str | None = None
    """A file replacing the extraction prompt; it holds {reference} and {prediction}."""

    def as_record(self) -> dict:
        """The settings as results.json lists them: compat, and the fields the recipe set."""
        return {"compat": self.compat, **{name: getattr(self, name) for name in CUE_F1_FIELDS
                                          if name != "compat" and getattr(self, name) is not None}}


@dataclass
class EvalRecipe:
    name: str
    source: str
    model: str
    variants: dict[str, VariantModel]
    split: str = "val"
    bucket: str = "C2-6"
    limit: int | None = None
    out: Path = Path("runs/imagechain-eval")
    device: str = "cpu"
    generation: PredictionSettings = field(default_factory=PredictionSettings)
    icl: IclPool = field(default_factory=IclPool)
    judge: JudgeSettings = field(default_factory=lambda: JudgeSettings("none"))
    cue_f1: CueF1Settings | None = None
    concurrency: int = 4
    path: Path | None = None


def load_recipe(path: str | Path) -> EvalRecipe:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"--recipe: file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise DataError(f"{path}: not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: a recipe is a YAML mapping")
    unknown = sorted(set(data) - KNOWN)
    if unknown:
        raise DataError(f"{path}: unknown field {unknown[0]!r}; known: {', '.join(sorted(KNOWN))}")
    for name in ("name", "source", "model"):
        if not isinstance(data.get(name), str) or not data[name].strip():
            raise DataError(f"{path}: field {name!r} is required (a string)")
    return _build(data, path)


def _build(data: dict, path: Path) -> EvalRecipe:
    where = str(path)
    split, bucket = data.get("split", "val"), data.get("bucket", "C2-6")
    if split not in SPLITS:
        raise DataError(f"{where}: split {split!r} is not one of {', '.join(SPLITS)}")
    if bucket not in EVAL_BUCKETS:
        raise DataError(f"{where}: bucket {bucket!r} is not one of {', '.join(EVAL_BUCKETS)}")
    return EvalRecipe(
        name=data["name"], source=data["source"], model=data["model"], split=split, bucket=bucket,
        variants=_variants(data.get("variants"), data["model"], where),
        limit=_positive(data.get("limit"), "limit", where),
        out=Path(data.get("out") or f"runs/imagechain-eval/{data['name']}"),
        device=str(data.get("device", "cpu")), generation=_generation(data.get("generation") or {}, where),
        icl=_icl(data.get("icl") or {}, where), judge=parse_judge(data.get("judge", "none"), where),
        cue_f1=_cue_f1(data.get("cue_f1"), where), concurrency=_positive(data.get("concurrency", 4),
                                                                         "concurrency", where),
        path=path)


def _positive(value, name: str, where: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise DataError(f"{where}: {name} must be a positive integer, got {value!r}")
    return value


def _variants(value, model: str, where: str) -> dict[str, VariantModel]:
    if value is None:
        value = list(VARIANTS)
    if isinstance(value, list):
        value = {name: {} for name in value}
    if not isinstance(value, dict) or not value:
        raise DataError(f"{where}: variants must be a non-empty list or mapping")
    out = {}
    for name, entry in value.items():
        if name not in VARIANTS:
            raise DataError(f"{where}: variants: unknown variant {name!r}; known: {', '.join(VARIANTS)}")
        entry = entry or {}
        if not isinstance(entry, dict) or set(entry) - {"model", "adapter"}:
            raise DataError(f"{where}: variants.{name}: expected a mapping with model and/or adapter")
        out[name] = VariantModel(model=str(entry.get("model") or model), adapter=entry.get("adapter"))
    return out


def _generation(value: dict, where: str) -> PredictionSettings:
    known = {f.name for f in fields(PredictionSettings)}
    if not isinstance(value, dict) or set(value) - known:
        extra = sorted(set(value) - known) if isinstance(value, dict) else ["(not a mapping)"]
        raise DataError(f"{where}: generation: unknown field {extra[0]!r}; known: {', '.join(sorted(known))}")
    try:
        return PredictionSettings(**value)
    except (TypeError, DataError) as err:
        raise DataError(f"{where}: generation: {err}") from None


def _icl(value: dict, where: str) -> IclPool:
    bucket = value.get("bucket", "C2-6")
    if bucket not in EVAL_BUCKETS and bucket not in TRAIN_BUCKETS:
        raise DataError(f"{where}: icl.bucket {bucket!r} is not a bucket")
    return IclPool(bucket=bucket, limit=_positive(value.get("limit", 200), "icl.limit", where))


def parse_judge(value, where: str = "--judge") -> JudgeSettings:
    """`none`, `embedding`, a model name (the LLM judge), or a mapping {kind, model, threshold}."""
    if isinstance(value, str):
        if value in ("none", "embedding"):
            value = {"kind": value}
        else:
            value = {"kind": "llm", "model": value}
    if not isinstance(value, dict) or value.get("kind") not in JUDGE_KINDS:
        raise DataError(f"{where}: judge must be none, embedding, or a model name (e.g. openai:NAME@URL)")
    if value["kind"] == "llm" and not value.get("model"):
        raise DataError(f"{where}: the llm judge needs a model")
    threshold = value.get("threshold")
    if threshold is not None and not isinstance(threshold, (int, float)):
        raise DataError(f"{where}: judge threshold must be a number")
    return JudgeSettings(kind=value["kind"], model=value.get("model"), threshold=threshold)


def _cue_f1(value, where: str) -> CueF1Settings | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not value.get("extractor"):
        raise DataError(f"{where}: cue_f1 needs an extractor model")
    if set(value) - set(CUE_F1_FIELDS):
        raise DataError(f"{where}: cue_f1: unknown field {sorted(set(value) - set(CUE_F1_FIELDS))[0]!r}")
    for name in ("behaviour_graph", "object_graph", "prompt_file"):
        if value.get(name) and not Path(value[name]).is_file():
            raise DataError(f"{where}: cue_f1.{name}: file not found: {value[name]}")
    if not isinstance(value.get("compat", False), bool):
        raise DataError(f"{where}: cue_f1.compat must be true or false")
    return CueF1Settings(**value)
