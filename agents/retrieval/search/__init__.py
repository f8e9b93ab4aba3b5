"""Image search: providers tried in order until enough candidates pass the licence policy.

A provider is an async function with one signature,

    async def provider(query: str, count: int, policy: LicencePolicy, settings: SearchSettings,
                       skip: Collection[str]) -> list[Candidate]

and `PROVIDERS` maps its name to it. `count` is how many admitted candidates are wanted, not
counting URLs in `skip` (tried before, or taken by another image slot of the run): a provider reads
past those. It may return more than `count`, refused licences and skipped URLs included.
`search_images` asks each named provider in turn for what is still missing, keeps the
candidates the policy admits, records the others with their reason, and stops at `count`. A
provider that fails (HTTP error, timeout) is recorded in `problems` and the next one is tried;
bad user input raises a one-line ValueError.

    result = await search_images("brass gear", 6, LicencePolicy(), providers=("openverse", "ddgs"))
    result.candidates        # -> fetch
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field

from agents.retrieval.search.candidate import Candidate
from agents.retrieval.search.ddgs_images import search_ddgs
from agents.retrieval.search.folder import search_folder
from agents.retrieval.search.openverse import search_openverse
from agents.retrieval.search.settings import ProviderError, SearchSettings
from schemas.licences import LicencePolicy

__all__ = ["PROVIDERS", "Candidate", "ProviderError", "SearchResult", "SearchSettings", "search_images"]

log = logging.getLogger(__name__)

PROVIDERS = {"openverse": search_openverse, "ddgs": search_ddgs, "folder": search_folder}


@dataclass
class SearchResult:
    """What one search found, and why the rest was not kept."""

    candidates: list[Candidate] = field(default_factory=list)
    """Admitted by the licence policy, at most `count`, in provider order."""
    refused: list[tuple[Candidate, str]] = field(default_factory=list)
    """Candidates the policy refused, each with the reason."""
    problems: list[str] = field(default_factory=list)
    """One line per provider that failed, e.g. "openverse: HTTP 429: ..."."""


async def search_images(query: str, count: int, policy: LicencePolicy = LicencePolicy(), *,
                        providers: tuple[str, ...] | list[str] = ("openverse",),
                        settings: SearchSettings = SearchSettings(),
                        skip: Collection[str] = frozenset()) -> SearchResult:
    """Up to `count` licence-admitted candidates for `query`, from `providers` in order; a URL in
    `skip` is passed over (neither counted nor returned)."""
    _check_input(query, count, providers)
    result = SearchResult()
    seen: set[str] = set()
    for name in providers:
        missing = count - len(result.candidates)
        if missing <= 0:
            break
        try:
            found = await PROVIDERS[name](query, missing, policy, settings, skip)
        except ProviderError as err:
            log.warning("%s", err)
            result.problems.append(str(err))
            continue
        for candidate in found:
            if candidate.url in seen or candidate.url in skip:
                continue
            seen.add(candidate.url)
            reason = policy.refusal(candidate.licence)
            if reason is not None:
                result.refused.append((candidate, reason))
            elif len(result.candidates) < count:
                result.candidates.append(candidate)
    return result


def _check_input(query: str, count: int, providers) -> None:
    if not isinstance(query, str) or not query.strip():
        raise ValueError("query: must be a non-empty string")
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"count: must be a positive integer, got {count!r}")
    if isinstance(providers, str):
        raise ValueError(f"providers: must be a list of names, got the string {providers!r}")
    for name in providers:
        if name not in PROVIDERS:
            raise ValueError(f"providers: unknown provider {name!r}; known: {', '.join(sorted(PROVIDERS))}")
