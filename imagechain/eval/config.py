"""Evaluation recipes: one YAML file says what `imagechain eval` runs.

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
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from imagechain.buckets import EVAL_BUCKETS, SPLITS, TRAIN_BUCKETS
from imagechain.conversation import VARIANTS
from imagechain.generate import GenerationSettings
from schemas.errors import DataError

KNOWN = {"name", "source", "split", "bucket", "limit", "out", "model", "device", "variants", "generation", "icl",
         "judge", "cue_f1", "concurrency", "description"}


@dataclass(frozen=True)
class VariantModel:
    model: str
    adapter: str | None = None

    @property
    def label(self) -> str:
        return f"{self.model}+{self.adapter}" if self.adapter else self.model


@dataclass
class Recipe:
    name: str
    source: str
    model: str
    variants: dict[str, VariantModel]
    split: str = "val"
    bucket: str = "C2-6"
    limit: int | None = None
    out: Path = Path("runs/imagechain-eval")
    device: str = "cpu"
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    icl: dict = field(default_factory=lambda: {"bucket": "C2-6", "limit": 200})
    judge: dict = field(default_factory=lambda: {"kind": "none"})
    cue_f1: dict | None = None
    concurrency: int = 4
    path: Path | None = None


def load_recipe(path: str | Path) -> Recipe:
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


def _build(data: dict, path: Path) -> Recipe:
    where = str(path)
    split, bucket = data.get("split", "val"), data.get("bucket", "C2-6")
    if split not in SPLITS:
        raise DataError(f"{where}: split {split!r} is not one of {', '.join(SPLITS)}")
    if bucket not in EVAL_BUCKETS:
        raise DataError(f"{where}: bucket {bucket!r} is not one of {', '.join(EVAL_BUCKETS)}")
    return Recipe(
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


def _generation(value: dict, where: str) -> GenerationSettings:
    known = {f.name for f in fields(GenerationSettings)}
    if not isinstance(value, dict) or set(value) - known:
        extra = sorted(set(value) - known) if isinstance(value, dict) else ["(not a mapping)"]
        raise DataError(f"{where}: generation: unknown field {extra[0]!r}; known: {', '.join(sorted(known))}")
    try:
        return GenerationSettings(**value)
    except (TypeError, DataError) as err:
        raise DataError(f"{where}: generation: {err}") from None


def _icl(value: dict, where: str) -> dict:
    bucket = value.get("bucket", "C2-6")
    if bucket not in EVAL_BUCKETS and bucket not in TRAIN_BUCKETS:
        raise DataError(f"{where}: icl.bucket {bucket!r} is not a bucket")
    return {"bucket": bucket, "limit": _positive(value.get("limit", 200), "icl.limit", where)}


def parse_judge(value, where: str = "--judge") -> dict:
    """`none`, `embedding`, a model name (the LLM judge), or a mapping {kind, model, threshold}."""
    if isinstance(value, str):
        if value in ("none", "embedding"):
            value = {"kind": value}
        else:
            value = {"kind": "llm", "model": value}
    if not isinstance(value, dict) or value.get("kind") not in ("none", "embedding", "llm"):
        raise DataError(f"{where}: judge must be none, embedding, or a model name (e.g. openai:NAME@URL)")
    if value["kind"] == "llm" and not value.get("model"):
        raise DataError(f"{where}: the llm judge needs a model")
    threshold = value.get("threshold")
    if threshold is not None and not isinstance(threshold, (int, float)):
        raise DataError(f"{where}: judge threshold must be a number")
    return value


def _cue_f1(value, where: str) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not value.get("extractor"):
        raise DataError(f"{where}: cue_f1 needs an extractor model")
    allowed = {"extractor", "behaviour_graph", "object_graph", "compat", "prompt_file"}
    if set(value) - allowed:
        raise DataError(f"{where}: cue_f1: unknown field {sorted(set(value) - allowed)[0]!r}")
    for name in ("behaviour_graph", "object_graph", "prompt_file"):
        if value.get(name) and not Path(value[name]).is_file():
            raise DataError(f"{where}: cue_f1.{name}: file not found: {value[name]}")
    if not isinstance(value.get("compat", False), bool):
        raise DataError(f"{where}: cue_f1.compat must be true or false")
    return {"compat": False, **value}
