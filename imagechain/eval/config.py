"""Evaluation recipes: one YAML file says what `imagechain eval` runs (`EvalRecipe`).

    name: tiny-eval
    benchmark: storyframes          # storyframes (Table 1, SimRate) or mementos (Table 3, cue F1)
    source: data/StoryFrames        # StoryFrames folder, hub id, or a vischain run folder
    split: val                      # stories evaluated (val in the paper)
    bucket: C2-6                    # an evaluation bucket; columns C2 ... C2-6 are cut from it
    limit: 40                       # optional: at most this many stories (per domain for mementos)
    out: runs/imagechain-eval/tiny  # optional; default runs/imagechain-eval/<name>
    model: tiny:llava-next          # the base model of every variant unless a variant names its own
    device: cpu
    variants:                       # a list of names, or name -> {model, adapter}
      MLLM: {}
      ImageChain: {adapter: runs/imagechain-train/imagechain-c2-7/adapter}
    scene_visual: mean              # fine-tuned variants: mean | last | first | frame (see below)
    image_mode: native              # native | single-tile (LLaVA-NeXT, 576 tokens per image)
    generation: {temperature: 0.2, top_p: 0.1, max_new_tokens: 1024, seed: 30, greedy: false, frame: first}
    icl: {bucket: C2-6, limit: 200} # MLLM-ICL's demonstration pool: training stories
    judge: openai:meta-llama/Meta-Llama-3-70B-Instruct@http://localhost:8001/v1   # or embedding, none
    cue_f1:                         # optional (required for mementos): the Mementos keyword F1
      extractor: openai:...@...
      behaviour_graph: imagechain/synonyms/example-robo-behaviour.json
      object_graph: imagechain/synonyms/example-robo-object.json
      graphs: runs/mementos-synonyms   # mementos: a folder of <domain>-behaviour.json / <domain>-object.json
      compat: false
    mementos:                       # only for benchmark: mementos (imagechain.eval.mementos_eval)
      domains: [comics, dl, robo]
      images: data/Mementos/images  # default SOURCE/images
      input: sequence               # sequence (one image per frame) | combined (one combined image)
      chain_output: concatenate     # chain variants' answer: every turn's answer joined | last
    concurrency: 4

Models. Every model field (`model`, a variant's `model`, the judge, the cue F1 extractor) takes the
one model-spec syntax of agents.backends.factory: a string in the --model forms (tiny:NAME, a
folder or hub id, transformers:ID, openai:NAME@URL, vllm:ID), or a mapping `ModelSpec.from_dict`
reads, as profiles do (`{model: openai:NAME@URL, timeout: 600}`). In-process models run on `device`
unless the mapping names its own.

Scene visuals (`scene_visual`, the paper's section 3.2). Fine-tuned variants (MLLM-FT,
VisualContext, FinalScene, ImageChain) see each scene as training showed it: `mean` (default, the
paper's averaged features V-bar), `last` (mean for context scenes, the target scene's last frame:
the public LLaVA code) or `first` (every scene's first frame: the public Qwen code). These need
the model in this process (imagechain.eval.scene_generator). `frame` shows one representative frame
per scene (`generation.frame`) through any chat backend, e.g. a vLLM server. The variants that are
not fine-tuned always see one representative frame: the base model was never trained on averages.

`image_mode` (imagechain.data.image_modes): `native` is the model's own image processing;
`single-tile` is LLaVA-NeXT's 576-token base tile, as the public ImageChain code runs, for every
variant (in-process only). An adapter saved by `imagechain train` records its image mode; a recipe
that evaluates it in another mode is refused.

Relative paths are taken from the current directory.

    recipe = load_recipe("imagechain/recipes/eval/tiny-eval.yaml")
    recipe.judge.kind, recipe.generation.max_new_tokens
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal

from agents.backends.chat import BackendError
from agents.backends.factory import ModelSpec
from imagechain.data.buckets import EVAL_BUCKETS, SPLITS, TRAIN_BUCKETS
from imagechain.data.conversation import FINETUNED_VARIANTS, VARIANTS
from imagechain.data.image_modes import IMAGE_MODES
from imagechain.data.mementos import DOMAINS, INPUTS
from imagechain.data.render import SCENE_VISUALS
from imagechain.eval.predict import PredictionSettings
from schemas.errors import DataError, read_yaml

BENCHMARKS = ("storyframes", "mementos")
KNOWN = {"name", "benchmark", "source", "split", "bucket", "limit", "out", "model", "device", "variants",
         "scene_visual", "image_mode", "generation", "icl", "judge", "cue_f1", "mementos", "concurrency",
         "description"}
# Fields that mean nothing for Mementos (no buckets, no SimRate judge, no demonstrations in Table 3).
STORYFRAMES_ONLY = ("bucket", "icl", "judge")
EVAL_SCENE_VISUALS = (*SCENE_VISUALS, "frame")
JUDGE_KINDS = ("none", "embedding", "llm")
JUDGE_FIELDS = ("kind", "model", "threshold")
ICL_FIELDS = ("bucket", "limit")
CUE_F1_FIELDS = ("extractor", "behaviour_graph", "object_graph", "graphs", "compat", "prompt_file")
MEMENTOS_FIELDS = ("domains", "images", "input", "chain_output")
CHAIN_OUTPUTS = ("concatenate", "last")


@dataclass(frozen=True)
class VariantModel:
    model: ModelSpec
    adapter: str | None = None

    @property
    def label(self) -> str:
        """The name written to prediction records: the model (and adapter) that answered."""
        return f"{self.model.model}+{self.adapter}" if self.adapter else self.model.model

    @property
    def in_process(self) -> bool:
        return self.model.backend == "transformers"


@dataclass(frozen=True)
class JudgeSettings:
    """Who judges SimRate: nobody, the embedding stand-in, or an LLM (the paper's judge)."""

    kind: Literal["none", "embedding", "llm"]
    model: ModelSpec | None = None
    """The LLM judge's model; only for kind llm."""
    threshold: float | None = None
    """The embedding judge's cosine threshold; None: its default."""


@dataclass(frozen=True)
class IclPool:
    """Where MLLM-ICL draws its demonstrations from: training stories of one bucket."""

    bucket: str = "C2-6"
    limit: int = 200
    """Read at most this many training stories into the pool (they are held in memory)."""


@dataclass(frozen=True)
class CueF1Settings:
    """The Mementos keyword F1 (imagechain.eval.cue_f1)."""

    extractor: ModelSpec
    """The model that lists the keywords."""
    behaviour_graph: str | None = None
    """Synonym graph file for behaviours; None: exact matches only."""
    object_graph: str | None = None
    """Synonym graph file for objects; None: exact matches only."""
    graphs: str | None = None
    """Mementos: a folder of per-domain graphs, <domain>-behaviour.json and <domain>-object.json (as
    `imagechain data convert-synonyms` writes them; checked when the run starts, since a recipe is
    often written before the conversion); a domain without its file matches exactly."""
    compat: bool = False
    """Count all leftover predictions as one false positive, as the original notebook does."""
    prompt_file: str | None = None
    """A file replacing the extraction prompt; it holds {reference} and {prediction}."""

    def as_record(self) -> dict:
        """The settings as results.json lists them: compat, the extractor, and the files the recipe set."""
        record = {"compat": self.compat, "extractor": _spec_text(self.extractor)}
        return {**record, **{name: getattr(self, name) for name in ("behaviour_graph", "object_graph", "graphs",
                                                                     "prompt_file") if getattr(self, name)}}


@dataclass(frozen=True)
class MementosSettings:
    """What a Mementos run reads and how a chain variant's answer is formed (imagechain.eval.mementos_eval)."""

    domains: tuple[str, ...] = tuple(DOMAINS)
    images: Path | None = None
    """The image folder; None: SOURCE/images."""
    input: str = "sequence"
    """sequence: one image per frame (Mementos' s-input); combined: the one combined image (c-input)."""
    chain_output: str = "concatenate"
    """ImageChain variants answer turn by turn, one turn per frame: concatenate (every turn's answer
    joined, as the paper's Figure 6 shows) or last (the final turn's answer only)."""


@dataclass
class EvalRecipe:
    name: str
    source: str
    model: ModelSpec
    variants: dict[str, VariantModel]
    benchmark: str = "storyframes"
    split: str = "val"
    bucket: str = "C2-6"
    limit: int | None = None
    out: Path = Path("runs/imagechain-eval")
    device: str = "cpu"
    scene_visual: str = "mean"
    image_mode: str = "native"
    generation: PredictionSettings = field(default_factory=PredictionSettings)
    icl: IclPool = field(default_factory=IclPool)
    judge: JudgeSettings = field(default_factory=lambda: JudgeSettings("none"))
    cue_f1: CueF1Settings | None = None
    mementos: MementosSettings | None = None
    concurrency: int = 4
    path: Path | None = None

    def scene_visual_of(self, variant: str) -> str | None:
        """How `variant` sees a scene: a reduction of its frames, or None for one representative frame."""
        if variant in FINETUNED_VARIANTS and self.scene_visual != "frame":
            return self.scene_visual
        return None

    def check_variants(self, variants: dict[str, VariantModel], where: str = "variants") -> None:
        """DataError naming the variant whose model cannot do what the recipe asks of it."""
        for name, variant in variants.items():
            if variant.in_process:
                continue
            served = f"{where}.{name}: {variant.model.backend}:{variant.model.model} is served over HTTP"
            if variant.adapter:
                raise DataError(f"{served}; an adapter needs the model in this process (serve the merged "
                                "model instead, or name the base model without a prefix)")
            if self.image_mode == "single-tile":
                raise DataError(f"{served}; image_mode single-tile needs the model in this process "
                                "(or set image_mode: native)")
            if self.scene_visual_of(name):
                raise DataError(f"{served}; scene_visual {self.scene_visual} needs the model in this process "
                                "(or set scene_visual: frame to send one frame per scene)")


def load_recipe(path: str | Path) -> EvalRecipe:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"--recipe: file not found: {path}")
    data = read_yaml(path, DataError, what="recipe")
    if not isinstance(data, dict):
        raise DataError(f"{path}: a recipe is a YAML mapping")
    _known(data, KNOWN, str(path))
    for name in ("name", "source"):
        if not isinstance(data.get(name), str) or not data[name].strip():
            raise DataError(f"{path}: field {name!r} is required (a string)")
    if "model" not in data:
        raise DataError(f"{path}: field 'model' is required (a model name or a model mapping)")
    recipe = _build(data, path)
    recipe.check_variants(recipe.variants, f"{path}: variants")
    return recipe


def _known(value: dict, known, where: str) -> None:
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise DataError(f"{where}: unknown field {unknown[0]!r}; known: {', '.join(sorted(known))}")


def _build(data: dict, path: Path) -> EvalRecipe:
    where = str(path)
    benchmark = data.get("benchmark", "storyframes")
    split, bucket = data.get("split", "val"), data.get("bucket", "C2-6")
    if benchmark not in BENCHMARKS:
        raise DataError(f"{where}: benchmark {benchmark!r} is not one of {', '.join(BENCHMARKS)}")
    if split not in SPLITS:
        raise DataError(f"{where}: split {split!r} is not one of {', '.join(SPLITS)}")
    if bucket not in EVAL_BUCKETS:
        raise DataError(f"{where}: bucket {bucket!r} is not one of {', '.join(EVAL_BUCKETS)}")
    device = str(data.get("device", "cpu"))
    model = model_spec(data["model"], f"{where}: model", device)
    recipe = EvalRecipe(
        name=data["name"], source=data["source"], model=model, benchmark=benchmark, split=split, bucket=bucket,
        variants=_variants(data.get("variants"), model, where, device),
        limit=_positive(data.get("limit"), "limit", where),
        out=Path(data.get("out") or f"runs/imagechain-eval/{data['name']}"), device=device,
        scene_visual=_choice(data.get("scene_visual", "mean"), "scene_visual", EVAL_SCENE_VISUALS, where),
        image_mode=_choice(data.get("image_mode", "native"), "image_mode", IMAGE_MODES, where),
        generation=_generation(data.get("generation") or {}, where),
        icl=_icl(data.get("icl", {}), where), judge=parse_judge(data.get("judge", "none"), f"{where}: judge", device),
        cue_f1=_cue_f1(data.get("cue_f1"), where, device),
        concurrency=_positive(data.get("concurrency", 4), "concurrency", where, required=True), path=path)
    if benchmark == "mementos":
        _mementos_only(data, recipe, where)
    elif "mementos" in data:
        raise DataError(f"{where}: mementos: only for benchmark: mementos")
    return recipe


def _mementos_only(data: dict, recipe: EvalRecipe, where: str) -> None:
    present = [name for name in STORYFRAMES_ONLY if name in data]
    if present:
        raise DataError(f"{where}: {present[0]}: not used by benchmark mementos (it is scored by cue_f1, per domain)")
    if recipe.cue_f1 is None:
        raise DataError(f"{where}: cue_f1: required for benchmark mementos (the paper's Table 3 metric)")
    if "MLLM-ICL" in recipe.variants or "ImageChain-NoFT" in recipe.variants:
        raise DataError(f"{where}: variants: MLLM-ICL and ImageChain-NoFT are not rows of Table 3")
    recipe.mementos = _mementos(data.get("mementos") or {}, where)


def model_spec(value, where: str, device: str = "cpu") -> ModelSpec:
    """A model field: a --model string or a ModelSpec mapping; in-process models default to `device`."""
    if isinstance(value, str):
        value = {"model": value}
    if not isinstance(value, dict):
        raise DataError(f"{where}: expected a model name (e.g. openai:NAME@URL) or a mapping with model")
    try:
        return ModelSpec.from_dict({"device": device, **value}, where=where)
    except (BackendError, TypeError) as err:
        raise DataError(str(err).splitlines()[0]) from None


def _positive(value, name: str, where: str, required: bool = False) -> int | None:
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise DataError(f"{where}: {name} must be a positive integer, got {value!r}")
    return value


def _choice(value, name: str, known, where: str) -> str:
    if value not in known:
        raise DataError(f"{where}: {name} {value!r} is not one of {', '.join(known)}")
    return value


def _variants(value, model: ModelSpec, where: str, device: str) -> dict[str, VariantModel]:
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
        if not isinstance(entry, dict):
            raise DataError(f"{where}: variants.{name}: expected a mapping with model and/or adapter")
        _known(entry, ("model", "adapter"), f"{where}: variants.{name}")
        spec = model_spec(entry["model"], f"{where}: variants.{name}.model", device) if entry.get("model") else model
        adapter = entry.get("adapter")
        if adapter is not None and not isinstance(adapter, str):
            raise DataError(f"{where}: variants.{name}.adapter: expected a folder path, got {adapter!r}")
        out[name] = VariantModel(model=spec, adapter=adapter)
    return out


def _generation(value, where: str) -> PredictionSettings:
    known = {f.name for f in fields(PredictionSettings)}
    if not isinstance(value, dict):
        raise DataError(f"{where}: generation: expected a mapping of {', '.join(sorted(known))}")
    _known(value, known, f"{where}: generation")
    try:
        return PredictionSettings(**value)
    except (TypeError, DataError) as err:
        raise DataError(f"{where}: generation: {err}") from None


def _icl(value, where: str) -> IclPool:
    if not isinstance(value, dict):
        raise DataError(f"{where}: icl: expected a mapping with bucket and/or limit")
    _known(value, ICL_FIELDS, f"{where}: icl")
    bucket = value.get("bucket", "C2-6")
    if bucket not in EVAL_BUCKETS and bucket not in TRAIN_BUCKETS:
        raise DataError(f"{where}: icl.bucket {bucket!r} is not a bucket")
    # The pool is held in memory, so it always has a bound: null is refused, not read as "everything".
    return IclPool(bucket=bucket, limit=_positive(value.get("limit", 200), "icl.limit", where, required=True))


def parse_judge(value, where: str = "--judge", device: str = "cpu") -> JudgeSettings:
    """`none`, `embedding`, a model (the LLM judge), or a mapping {kind, model, threshold}."""
    if isinstance(value, str):
        value = {"kind": value} if value in ("none", "embedding") else {"kind": "llm", "model": value}
    if not isinstance(value, dict):
        raise DataError(f"{where}: judge must be none, embedding, a model name (e.g. openai:NAME@URL), "
                        "or a mapping with kind, model, threshold")
    _known(value, JUDGE_FIELDS, where)
    kind = value.get("kind", "llm" if value.get("model") else None)
    if kind not in JUDGE_KINDS:
        raise DataError(f"{where}: kind {kind!r} is not one of {', '.join(JUDGE_KINDS)}")
    if kind == "llm" and not value.get("model"):
        raise DataError(f"{where}: the llm judge needs a model")
    if kind != "llm" and value.get("model"):
        raise DataError(f"{where}: model: only the llm judge takes a model (kind is {kind})")
    threshold = value.get("threshold")
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, (int, float))):
        raise DataError(f"{where}: threshold must be a number, got {threshold!r}")
    if threshold is not None and kind != "embedding":
        raise DataError(f"{where}: threshold: only the embedding judge takes a threshold (kind is {kind})")
    model = model_spec(value["model"], f"{where}.model", device) if kind == "llm" else None
    return JudgeSettings(kind=kind, model=model, threshold=threshold)


def _cue_f1(value, where: str, device: str) -> CueF1Settings | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not value.get("extractor"):
        raise DataError(f"{where}: cue_f1 needs an extractor model")
    _known(value, CUE_F1_FIELDS, f"{where}: cue_f1")
    for name in ("behaviour_graph", "object_graph", "prompt_file"):
        if value.get(name) and not Path(value[name]).is_file():
            raise DataError(f"{where}: cue_f1.{name}: file not found: {value[name]}")
    if not isinstance(value.get("compat", False), bool):
        raise DataError(f"{where}: cue_f1.compat must be true or false")
    extractor = model_spec(value["extractor"], f"{where}: cue_f1.extractor", device)
    return CueF1Settings(**{**value, "extractor": extractor})


def _mementos(value, where: str) -> MementosSettings:
    if not isinstance(value, dict):
        raise DataError(f"{where}: mementos: expected a mapping of {', '.join(MEMENTOS_FIELDS)}")
    _known(value, MEMENTOS_FIELDS, f"{where}: mementos")
    domains = value.get("domains", list(DOMAINS))
    if not isinstance(domains, list) or not domains:
        raise DataError(f"{where}: mementos.domains: expected a list of {', '.join(DOMAINS)}")
    for domain in domains:
        _choice(domain, "mementos.domains: domain", DOMAINS, where)
    images = value.get("images")
    if images is not None and not Path(images).is_dir():
        raise DataError(f"{where}: mementos.images: folder not found: {images}")
    return MementosSettings(
        domains=tuple(domains), images=Path(images) if images else None,
        input=_choice(value.get("input", "sequence"), "mementos.input", INPUTS, where),
        chain_output=_choice(value.get("chain_output", "concatenate"), "mementos.chain_output", CHAIN_OUTPUTS,
                             where))


def _spec_text(spec: ModelSpec) -> str:
    """A model spec as one readable name: backend:model, or the plain model for in-process ones."""
    return spec.model if spec.backend == "transformers" else f"{spec.backend}:{spec.model}"
