"""`ddgs` provider: DuckDuckGo image search through the `ddgs` library, with its licence filter.

DuckDuckGo images come from Bing's index, and its `license:` filter is Bing's licence filter. The
filter is a claim about a whole result set, not a per-image statement, so the licence is recorded
as `verified: false` with the filter used, and the policy refuses it unless the user accepts
unverified licences. Only the `duckduckgo` engine of ddgs applies the filter (its `bing` engine
ignores `license_image`), so we pin `backend="duckduckgo"`.

Each filter admits a set of licences (Bing's groups). We use the widest filter whose whole set the
policy allows and record the most demanding licence of that set, so the attribution and
share-alike duties we honour cover every image the filter can return.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection

from ddgs import DDGS
from ddgs.exceptions import DDGSException

from agents.retrieval.search.candidate import Candidate, as_int, is_web_url
from agents.retrieval.search.settings import ProviderError, SearchSettings
from schemas.licences import Licence, LicencePolicy

# (ddgs `license_image` value, the licences it admits, the one we record), widest first.
# Bing's filters: Modify = free to modify, share and use; ModifyCommercially adds "commercially";
# Public = public domain. Share-only filters are left out: they admit ND images we could not edit.
DDGS_PAGE = 100  # results on one DuckDuckGo images page: asking past `skip` up to this costs no request

FILTERS = (
    ("Modify", frozenset({"cc0", "pdm", "by", "by-sa", "by-nc", "by-nc-sa"}), "by-nc-sa"),
    ("ModifyCommercially", frozenset({"cc0", "pdm", "by", "by-sa"}), "by-sa"),
    ("Public", frozenset({"cc0", "pdm"}), "pdm"),
)


def pick_filter(policy: LicencePolicy) -> tuple[str, str] | None:
    """(filter, recorded licence id) for the widest filter inside the policy; None if none fits."""
    for name, admits, recorded in FILTERS:
        if admits <= policy.allow:
            return name, recorded
    return None


async def search_ddgs(query: str, count: int, policy: LicencePolicy, settings: SearchSettings,
                      skip: Collection[str] = frozenset()) -> list[Candidate]:
    """About `count` candidates not in `skip` from DuckDuckGo images, under the licence filter the
    policy allows. One results page holds about 100, so asking past `skip` is capped there."""
    chosen = pick_filter(policy)
    if not policy.accept_unverified or chosen is None:
        return []  # every result would be refused: spare the query
    filter_name, recorded = chosen
    licence = Licence(recorded, version=None, url=None, verified=False, filter=f"license:{filter_name}")
    rows = await asyncio.to_thread(_images, query, min(count + len(skip), max(count, DDGS_PAGE)), filter_name, settings)
    return [c for c in (candidate_from_ddgs(row, licence) for row in rows) if c is not None]


def _images(query: str, count: int, filter_name: str, settings: SearchSettings) -> list[dict]:
    try:
        return DDGS(timeout=max(1, round(settings.timeout))).images(
            query, region=settings.region, safesearch=settings.safesearch, max_results=count,
            backend="duckduckgo", license_image=filter_name)
    except DDGSException as err:
        if "no results" in str(err).lower():
            return []
        raise ProviderError(f"ddgs: {str(err).splitlines()[0][:200] if str(err) else type(err).__name__}") from None


def candidate_from_ddgs(row: dict, licence: Licence) -> Candidate | None:
    """One ddgs image result ({title, image, thumbnail, url, height, width, source}) as a Candidate."""
    if not isinstance(row, dict) or not is_web_url(row.get("image")):
        return None
    page_url = row.get("url") if is_web_url(row.get("url")) else None
    title = row.get("title") or None
    return Candidate(
        url=row["image"],
        page_url=page_url,
        title=title,
        provider="ddgs",
        licence=licence,
        width=as_int(row.get("width")),
        height=as_int(row.get("height")),
        attribution=_attribution(title, page_url),
        source=row.get("source") or None,
    )


def _attribution(title: str | None, page_url: str | None) -> str | None:
    """The best credit line we can write without a stated creator: the title and where it appears."""
    if title and page_url:
        return f'"{title}" from {page_url}'
    return page_url or title
