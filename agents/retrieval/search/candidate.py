"""What a search provider returns: one image it found, with everything provenance needs later."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from schemas.licences import Licence


@dataclass(frozen=True)
class Candidate:
    """One image a provider found. Nothing has been downloaded yet."""

    url: str
    """Where the fetcher gets the bytes: http(s) for web providers, file:// for the folder provider."""
    page_url: str | None
    """The page that shows the image (its landing page), for attribution."""
    title: str | None
    """The image's title as the provider gives it."""
    provider: str
    """ddgs, openverse or folder."""
    licence: Licence | None
    """The licence facts; None when the provider gives none we recognise (always refused)."""
    width: int | None = None
    """Width in pixels when the provider says; the fetcher measures it anyway."""
    height: int | None = None
    """Height in pixels when the provider says."""
    creator: str | None = None
    """Author or rights holder, when known."""
    attribution: str | None = None
    """A ready credit line (Openverse writes one); None when the provider has none."""
    source: str | None = None
    """Where the provider got it (Openverse: flickr, wikimedia, ...); free text."""
    source_url: str | None = None
    """The image's public address for provenance when `url` is local (folder provider); else None."""

    @property
    def provenance_source_url(self) -> str | None:
        """The address provenance records: never a local file path."""
        if self.source_url:
            return self.source_url
        return self.url if is_web_url(self.url) else None


def is_web_url(url: str | None) -> bool:
    """True for an absolute http(s) URL with a host: the only kind a web provider may hand on."""
    if not url:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def as_int(value) -> int | None:
    """Providers give sizes as ints, strings or nothing; anything unreadable is None."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None
