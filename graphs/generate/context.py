"""What the generate graph's nodes use but never store in state: models, fetcher, painter, limits.

The runner (graphs/generate/runner.py) builds one context per process and shares it across all
task graphs; graph state stays small and checkpointable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from agents.backends.chat import ChatModel
from agents.painter import Painter
from agents.retrieval.fetch import Fetcher
from agents.retrieval.search.settings import SearchSettings
from graphs.profile import PipelineSettings
from schemas.licences import LicencePolicy
from schemas.run_claims import RunClaims
from schemas.run_store import RunStore


@dataclass
class GenerateContext:
    store: RunStore
    planner: ChatModel
    keywords: ChatModel
    validator: ChatModel
    painter: Painter
    fetcher: Fetcher
    claims: RunClaims
    """Which slot holds each URL and image, shared by every task (and process) of the run."""
    search: SearchSettings
    providers: tuple[str, ...]
    licences: LicencePolicy
    settings: PipelineSettings
    on_stage: Callable[[str, str], None] = lambda task_id, stage: None
    """Called as each node starts: the runner's progress display."""
