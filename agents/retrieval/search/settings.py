"""Settings every search provider receives, and the one error a provider may raise."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

OPENVERSE_URL = "https://api.openverse.org/v1/images/"


class ProviderError(RuntimeError):
    """A provider could not answer (HTTP error, bad JSON, rate limit). One line; the search goes on."""


@dataclass(frozen=True)
class SearchSettings:
    """Where each provider looks and how long it may take."""

    openverse_url: str = OPENVERSE_URL
    """Openverse image search endpoint; tests point it at a local server."""
    openverse_token: str | None = None
    """OAuth access token for Openverse; anonymous requests get at most 20 results a page."""
    folder: Path | None = None
    """Directory with images and a licenses.jsonl, for the `folder` provider."""
    timeout: float = 20.0
    """Seconds for one provider request; Openverse answers in about 1-3 s, DuckDuckGo in under 2 s."""
    region: str = "us-en"
    """DuckDuckGo region code."""
    safesearch: str = "moderate"
    """DuckDuckGo safe search: on, moderate or off."""
