"""`openverse` provider: the Openverse image search API (https://api.openverse.org/v1/images/).

Openverse states a licence per image (id, version, deed URL), its creator, its source and a ready
attribution line, so its licences are recorded as verified. We ask only for the licences the policy
admits (`license=by,by-sa,...`), and still check each result, since an index can be wrong.
"""

from __future__ import annotations

from collections.abc import Collection

import httpx

from agents.retrieval.search.candidate import Candidate, as_int, is_web_url
from agents.retrieval.search.settings import ProviderError, SearchSettings
from schemas.licence_grammar import parse_licence
from schemas.licences import LicencePolicy

# Anonymous clients get at most 20 results a page; an authenticated one up to 500 (API docs).
ANONYMOUS_PAGE_SIZE = 20
TOKEN_PAGE_SIZE = 500
# Pages asked for one query at most: a query whose first 5 pages yield too little will not improve.
MAX_PAGES = 5
USER_AGENT = "vischain/0.1 (benchmark image search)"


async def search_openverse(query: str, count: int, policy: LicencePolicy, settings: SearchSettings,
                           skip: Collection[str] = frozenset()) -> list[Candidate]:
    """Candidates for `query`, pages read until `count` of them not in `skip` pass the policy (the
    caller applies it)."""
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    if settings.openverse_token:
        headers["Authorization"] = f"Bearer {settings.openverse_token}"
    page_size = min(count + len(skip), TOKEN_PAGE_SIZE if settings.openverse_token else ANONYMOUS_PAGE_SIZE)
    params = {"q": query, "license": ",".join(sorted(policy.allow)), "page_size": page_size}
    found: list[Candidate] = []
    async with httpx.AsyncClient(timeout=settings.timeout, headers=headers, trust_env=False) as http:
        for page in range(1, MAX_PAGES + 1):
            data = await _get_page(http, settings.openverse_url, {**params, "page": page})
            found += [c for c in map(candidate_from_openverse, data.get("results") or []) if c is not None]
            admitted = sum(policy.admits(c.licence) and c.url not in skip for c in found)
            if admitted >= count or page >= (data.get("page_count") or 0):
                break
    return found


async def _get_page(http: httpx.AsyncClient, url: str, params: dict) -> dict:
    try:
        response = await http.get(url, params=params)
    except httpx.TimeoutException:
        raise ProviderError(f"openverse: timed out at {url}") from None
    except httpx.TransportError as err:
        raise ProviderError(f"openverse: cannot reach {url}: {err.__class__.__name__}") from None
    if response.status_code != 200:
        raise ProviderError(f"openverse: HTTP {response.status_code}: {response.text[:200].strip()}")
    try:
        data = response.json()
    except ValueError:
        raise ProviderError("openverse: response is not JSON") from None
    if not isinstance(data, dict):
        raise ProviderError("openverse: response is not a JSON object")
    return data


def candidate_from_openverse(item: dict) -> Candidate | None:
    """One Openverse result as a Candidate; None when it has no usable image URL."""
    if not isinstance(item, dict) or not is_web_url(item.get("url")):
        return None
    licence = parse_licence(item.get("license"), item.get("license_version"), item.get("license_url"), verified=True)
    return Candidate(
        url=item["url"],
        page_url=item.get("foreign_landing_url") if is_web_url(item.get("foreign_landing_url")) else None,
        title=item.get("title") or None,
        provider="openverse",
        licence=licence,
        width=as_int(item.get("width")),
        height=as_int(item.get("height")),
        creator=item.get("creator") or None,
        attribution=item.get("attribution") or None,
        source=item.get("source") or item.get("provider") or None,
    )
