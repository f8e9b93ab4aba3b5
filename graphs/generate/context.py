"""What the generate graph's nodes use but never store in state: models, fetcher, painter, limits.

The runner (vischain/generate_runner.py) builds one context per process and shares it across all
task graphs; graph state stays small and checkpointable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from agents.backends.chat import ChatModel, SamplingParams
from agents.painter import Painter
from agents.planner import PlanShape
from agents.retrieval.fetch import Fetcher
from agents.retrieval.search import SearchSettings
from schemas.licences import LicencePolicy
from schemas.run_store import RunStore


@dataclass(frozen=True)
class GenerateSettings:
    """The profile's `generate:` block; every field may be set there."""

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

    @classmethod
    def from_profile(cls, block: dict) -> "GenerateSettings":
        values = dict(block)
        values["plan_shape"] = PlanShape.from_dict(values.get("plan_shape"))
        return cls(**values)

    def params(self, seed: int, max_tokens: int | None = None) -> SamplingParams:
        return SamplingParams(max_tokens=max_tokens or self.max_new_tokens, temperature=self.temperature,
                                seed=seed)

    def judge_params(self, seed: int) -> SamplingParams:
        return SamplingParams(max_tokens=self.keyword_tokens, temperature=self.validator_temperature, seed=seed)


@dataclass
class GenerateContext:
    store: RunStore
    planner: ChatModel
    keywords: ChatModel
    validator: ChatModel
    painter: Painter
    fetcher: Fetcher
    search: SearchSettings
    providers: tuple[str, ...]
    licences: LicencePolicy
    settings: GenerateSettings
    on_stage: Callable[[str, str], None] = lambda task_id, stage: None
    """Called as each node starts: the runner's progress display."""
    claimed_urls: set[str] = field(default_factory=set)
    """Candidate URLs some slot of this process has taken or tried; every slot searches past them."""
