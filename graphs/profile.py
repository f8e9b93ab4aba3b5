"""Profiles: which models, search providers, licences and limits a run uses; the one owner of that format.

A profile is a YAML file in benchmark_data/profiles/ (`demo`, `local`, `paper`) or any path given
with `--config`. `load_profile` checks it against schemas/profile.schema.json once and returns a
typed `Profile` whose defaults live in the dataclasses below and nowhere else:

    profile = load_profile("demo")
    profile.planner.model, profile.generate.refine_rounds, profile.licences.allow

`Profile.record()` is the effective profile as JSON: run.json stores it, and a re-run on the same
run folder must give the same record.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from agents.backends.chat import BackendError, SamplingParams
from agents.backends.factory import ModelSpec
from agents.planner import PlanShape
from agents.retrieval.search.settings import OPENVERSE_URL, SearchSettings
from benchmark_data import PROFILES_DIR
from benchmark_data import ROOT as BENCHMARK_DATA
from schemas.errors import UsageError, read_yaml
from schemas.licences import DEFAULT_ALLOW, LicencePolicy
from schemas.run_claims import NEAR_DUPLICATE_BITS
from schemas.schema_check import schema_problems

AGENT_ROLES = ("planner", "keywords", "validator")


@dataclass(frozen=True)
class PipelineSettings:
    """The profile's `generate:` block: how hard the generate pipeline tries. Every field may be set there."""

    refine_rounds: int = 2
    """Search rounds after the first for a slot whose images were all rejected (R); then it is painted."""
    repair_attempts: int = 2
    """Retries of an agent whose output fails its schema, each seeing the validation error."""
    candidates_per_slot: int = 4
    """Images searched for and fetched per slot per round; the validator checks them in order."""
    planner_may_reject: bool = True
    """Let the planner reject a topic without a clear visual form (the task goes to failures.jsonl)."""
    max_new_tokens: int = 2048
    """Token budget of a plan; a 4-step plan of a 70B model is about 900 tokens."""
    keyword_tokens: int = 160
    """Token budget of one validator reply, and of each slot's part of a keywords reply."""
    temperature: float = 0.0
    """Sampling temperature of planner and keywords; calls are seeded per task, so they stay cacheable."""
    validator_temperature: float = 0.0
    """The validator is a judge: greedy by default, so the same image gets the same verdict."""
    plan_shape: PlanShape = field(default_factory=PlanShape)
    """Bounds of a plan: steps, distractors, text lengths."""
    paint_rounds: int = 2
    """Repaints of a slot whose painted image the validator rejected, each from a revised prompt; then
    the slot fails and so does its task. The paper's loop runs "until all images match the task
    context" with no stated bound; 2 bounds a slot to 3 paintings (docs/generation.md)."""
    paint_exhausted: str = "fail"
    """When every painting of a slot was rejected: `fail` the task (the paper's loop runs until the
    images match), or `keep` the last painting with the validator's "no" in its provenance (the demo,
    whose random validator says no to half of everything)."""
    paint_prompt: str = "model"
    """Who writes the text-to-image prompt: `model`, the keywords VLM from the slot, the task context and
    the rejections so far (the paper's "Qwen model-driven prompt engineering"); `template`, the fixed
    `a clear photo of <description>` with no model call."""
    paint_prompt_chars: int = 300
    """Longest prompt the model may write: about what a CLIP text encoder reads (77 tokens)."""

    def params(self, seed: int, max_tokens: int | None = None) -> SamplingParams:
        """Planner and keywords calls."""
        return SamplingParams(max_tokens=max_tokens or self.max_new_tokens, temperature=self.temperature, seed=seed)

    def judge_params(self, seed: int) -> SamplingParams:
        """Validator calls."""
        return SamplingParams(max_tokens=self.keyword_tokens, temperature=self.validator_temperature, seed=seed)

    def paint_prompt_params(self, seed: int) -> SamplingParams:
        """Painting-prompt calls: room for the longest prompt even at one token per character."""
        return SamplingParams(max_tokens=self.paint_prompt_chars + 32, temperature=self.temperature, seed=seed)


@dataclass(frozen=True)
class PainterSettings:
    """The profile's `painter:` block: the diffusion model that paints what retrieval could not find."""

    model: str
    """Hub id, local folder, or tiny:sd."""
    device: str = "cpu"
    """cpu, cuda, cuda:1, ..."""
    steps: int = 25
    """Denoising steps per image."""
    size: int = 512
    """Width and height in pixels."""
    guidance_scale: float = 7.5
    """Classifier-free guidance; SD 3.5 wants about 4.5, SD 1.5 about 7.5."""
    licence: str = "unknown"
    """The model's licence (a Hub licence id, or its own slug): the licence of the images it paints."""
    licence_url: str | None = None
    """Where that licence's text is, for a licence the Hub has no id for."""


@dataclass(frozen=True)
class SearchBlock:
    """The profile's `search:` block."""

    providers: tuple[str, ...]
    """Tried in order until a slot has enough candidates: folder, openverse, ddgs."""
    folder: Path | None = None
    """The folder provider's folder (with licenses.jsonl); relative paths are relative to benchmark_data/."""
    openverse_url: str = OPENVERSE_URL
    """Openverse's image search endpoint; tests point it at a local server."""
    allow_loopback: bool = False
    """Let the fetcher reach 127.0.0.1 (tests and benches only)."""
    near_duplicate_bits: int = NEAR_DUPLICATE_BITS
    """pHash distance (bits of 64) within which two retrieved images count as one; -1 turns it off."""

    def settings(self) -> SearchSettings:
        return SearchSettings(folder=self.folder, openverse_url=self.openverse_url)


@dataclass(frozen=True)
class Verifier:
    """One of `models.verifiers`: a model `vischain verify` runs, and how much its answers weigh."""

    spec: ModelSpec
    weight: float = 1.0
    """Trust in this model; multiplies its leave-one-task-out accuracy in the priority list."""


@dataclass(frozen=True)
class ReviewSettings:
    """The profile's `review:` block: the human quality-control stage (`vischain review`, docs/review.md)."""

    quiz_threshold: float = 0.75
    """Share of a task's quiz answers (on its current revision) that must be right for it to pass;
    under it the task reopens for review. 0.75 lets one slip in a four-question task pass and sends
    back a two-question task that a quiz taker got half wrong."""


@dataclass(frozen=True)
class Profile:
    name: str
    """The file's stem: demo, local, paper, or a --config file's name."""
    description: str
    planner: ModelSpec
    keywords: ModelSpec
    validator: ModelSpec
    painter: PainterSettings
    search: SearchBlock
    verifiers: tuple[Verifier, ...] = ()
    licences: LicencePolicy = field(default_factory=LicencePolicy)
    generate: PipelineSettings = field(default_factory=PipelineSettings)
    review: ReviewSettings = field(default_factory=ReviewSettings)

    def agent(self, role: str) -> ModelSpec:
        return {"planner": self.planner, "keywords": self.keywords, "validator": self.validator}[role]

    def record(self) -> dict:
        """The effective profile as JSON (every default filled in), as run.json stores it."""
        def spec(s: ModelSpec) -> dict:
            return {**asdict(s), "base_urls": list(s.base_urls)}
        return {
            "name": self.name, "description": self.description,
            "models": {**{role: spec(self.agent(role)) for role in AGENT_ROLES},
                       "verifiers": [{**spec(v.spec), "weight": v.weight} for v in self.verifiers]},
            "painter": asdict(self.painter),
            "search": {"providers": list(self.search.providers),
                       "folder": str(self.search.folder) if self.search.folder else None,
                       "openverse_url": self.search.openverse_url, "allow_loopback": self.search.allow_loopback,
                       "near_duplicate_bits": self.search.near_duplicate_bits},
            "licences": {"allow": sorted(self.licences.allow), "accept_unverified": self.licences.accept_unverified},
            "generate": asdict(self.generate),
            "review": asdict(self.review),
        }


def known_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def load_profile(name_or_path: str, flag: str = "--profile") -> Profile:
    """A profile by name or path, checked once; UsageError names the flag, the file or the field."""
    path = Path(name_or_path)
    if not path.is_file():
        path = PROFILES_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            raise UsageError(f"{flag}: unknown profile {name_or_path!r}; known: {', '.join(known_profiles())}")
    data = read_yaml(path, what="profile")
    problems = schema_problems("profile", data, str(path))
    if problems:
        raise UsageError(str(problems[0]))
    try:
        return _profile(data, path.stem, str(path))
    except (ValueError, BackendError) as err:
        raise UsageError(f"{path}: {err}") from None


def _profile(data: dict, name: str, where: str) -> Profile:
    """The typed tree of a schema-valid profile; ValueError or BackendError name the field."""
    models = data["models"]
    verifiers = []
    for i, entry in enumerate(models.get("verifiers") or []):
        spec = ModelSpec.from_dict({k: v for k, v in entry.items() if k != "weight"}, f"models.verifiers[{i}]")
        verifiers.append(Verifier(spec, float(entry.get("weight", 1.0))))
    search = dict(data["search"])
    folder = search.get("folder")
    if folder and not Path(folder).is_absolute():
        folder = BENCHMARK_DATA / folder
    licences = data.get("licences", {})
    return Profile(
        name=name, description=data["description"],
        **{role: ModelSpec.from_dict(models[role], f"models.{role}") for role in AGENT_ROLES},
        painter=PainterSettings(**data["painter"]),
        search=SearchBlock(providers=tuple(search["providers"]), folder=Path(folder) if folder else None,
                           openverse_url=search.get("openverse_url") or OPENVERSE_URL,
                           allow_loopback=bool(search.get("allow_loopback", False)),
                           near_duplicate_bits=search.get("near_duplicate_bits", NEAR_DUPLICATE_BITS)),
        verifiers=tuple(verifiers),
        licences=LicencePolicy(frozenset(licences.get("allow", DEFAULT_ALLOW)),
                               bool(licences.get("accept_unverified", False))),
        generate=pipeline_settings(data.get("generate") or {}),
        review=ReviewSettings(**{key: float(value) for key, value in (data.get("review") or {}).items()}),
    )


def pipeline_settings(block: dict) -> PipelineSettings:
    """The `generate:` block, its plan_shape checked field by field."""
    known = {f.name for f in fields(PipelineSettings)}
    unknown = sorted(set(block) - known)
    if unknown:
        raise ValueError(f"generate.{unknown[0]}: unknown field")
    values = dict(block)
    values["plan_shape"] = PlanShape.from_dict(values.get("plan_shape"))
    return PipelineSettings(**values)
