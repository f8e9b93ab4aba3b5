"""Licences: normalise what providers say to one id, and decide what a run may download.

Providers spell licences many ways ("CC BY-SA 4.0", "cc-by-sa-4.0", "by-sa", a creativecommons.org
URL). `parse_licence` turns each into one of eight ids plus a version:

    cc0, pdm, by, by-sa, by-nc, by-nc-sa, by-nd, by-nc-nd

Anything else (Openverse's "sampling+", "All rights reserved", an empty string) is unknown, and an
unknown licence is refused. `LicencePolicy` is the allowlist a run uses; the default admits only
licences that allow commercial use and derivatives (CC0, Public Domain Mark, CC BY, CC BY-SA).

    policy = LicencePolicy.default(non_commercial=True)       # the user asked for NC too
    licence = parse_licence("CC BY-NC 4.0", verified=True)
    policy.refusal(licence)                                   # None: admitted
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LICENCE_IDS = ("cc0", "pdm", "by", "by-sa", "by-nc", "by-nc-sa", "by-nd", "by-nc-nd")
DEFAULT_ALLOW = frozenset({"cc0", "pdm", "by", "by-sa"})
NON_COMMERCIAL = frozenset({"by-nc", "by-nc-sa", "by-nc-nd"})
NO_DERIVATIVES = frozenset({"by-nd", "by-nc-nd"})

# Word forms seen in the wild, mapped to the CC element they stand for.
_ELEMENTS = {"by": "by", "attribution": "by", "sa": "sa", "sharealike": "sa", "nc": "nc",
             "noncommercial": "nc", "nd": "nd", "noderivatives": "nd", "noderivs": "nd"}
_PUBLIC_DOMAIN = (
    ("cc0", re.compile(r"\bcc[\s_-]?0\b|\bcc[\s_-]?zero\b|publicdomain/zero|public domain dedication")),
    ("pdm", re.compile(r"\bpdm\b|publicdomain/mark|public domain mark|^public[\s_-]?domain$")),
)
_VERSION = re.compile(r"(?<![\w.])(\d\.\d)(?![\w.])")


@dataclass(frozen=True)
class Licence:
    """What we know about one image's licence, in the shape provenance.jsonl records."""

    id: str
    """Normalised id, one of LICENCE_IDS."""
    version: str | None = None
    """Licence version such as "4.0"; None when the provider does not say."""
    url: str | None = None
    """The licence deed; derived from id and version when the provider gives none."""
    verified: bool = True
    """True when the provider states this licence for this image; False when it comes from a search filter."""
    filter: str | None = None
    """The search filter that produced the image, recorded when verified is False."""

    def record(self) -> dict:
        """The `licence` object of a provenance line."""
        return {"id": self.id, "version": self.version, "url": self.url, "verified": self.verified,
                "filter": self.filter}


def parse_licence(text: str | None, version: str | None = None, url: str | None = None, *,
                  verified: bool = True, filter: str | None = None) -> Licence | None:
    """A Licence from a provider's words (or its URL when `text` is empty); None when unknown."""
    found = normalise_licence_id(text or "") or normalise_licence_id(url or "")
    if found is None:
        return None
    licence_id, text_version = found
    version = version or text_version or _version_in(url or "")
    return Licence(licence_id, version, url or licence_url(licence_id, version), verified, filter)


def normalise_licence_id(text: str) -> tuple[str, str | None] | None:
    """("by-sa", "4.0") from "CC BY-SA 4.0", a SPDX id, or a creativecommons.org URL; None if unknown."""
    text = text.strip().lower()
    if not text:
        return None
    version = _version_in(text)
    for licence_id, pattern in _PUBLIC_DOMAIN:
        if pattern.search(text):
            return licence_id, version
    # A URL names its elements in one path segment: /licenses/by-nc-sa/4.0/.
    if "creativecommons.org/licenses/" in text:
        text = text.split("creativecommons.org/licenses/", 1)[1].split("/", 1)[0]
    words = [w for w in re.split(r"[^a-z0-9]+", text) if w and not w.isdigit()]
    words = [w for w in words if w not in ("cc", "creative", "commons", "international", "generic",
                                           "unported", "license", "licence", "deed")]
    elements = {_ELEMENTS.get(w) for w in words}
    if not words or None in elements or "by" not in elements or {"sa", "nd"} <= elements:
        return None
    ordered = ["by"] + [e for e in ("nc", "sa", "nd") if e in elements]
    return "-".join(ordered), version


def licence_url(licence_id: str, version: str | None) -> str | None:
    """The Creative Commons deed URL, when the version is known."""
    if version is None:
        return None
    if licence_id == "cc0":
        return f"https://creativecommons.org/publicdomain/zero/{version}/"
    if licence_id == "pdm":
        return f"https://creativecommons.org/publicdomain/mark/{version}/"
    return f"https://creativecommons.org/licenses/{licence_id}/{version}/"


def _version_in(text: str) -> str | None:
    match = _VERSION.search(text)
    return match.group(1) if match else None


@dataclass(frozen=True)
class LicencePolicy:
    """Which licences a run may download. Nothing outside it is ever fetched."""

    allow: frozenset[str] = DEFAULT_ALLOW
    """Normalised licence ids admitted; the default is CC0, PDM, CC BY and CC BY-SA."""
    accept_unverified: bool = False
    """Admit licences that come from a search filter rather than a per-image statement (ddgs)."""

    def __post_init__(self):
        unknown = sorted(set(self.allow) - set(LICENCE_IDS))
        if unknown:
            raise ValueError(f"allow: unknown licence id {unknown[0]!r}; known: {', '.join(LICENCE_IDS)}")
        if not self.allow:
            raise ValueError("allow: at least one licence id is required")
        object.__setattr__(self, "allow", frozenset(self.allow))

    @classmethod
    def default(cls, *, non_commercial: bool = False, no_derivatives: bool = False,
                accept_unverified: bool = False) -> LicencePolicy:
        """The default allowlist, widened to NC and/or ND licences only when the user asks."""
        allow = set(DEFAULT_ALLOW)
        if non_commercial:
            allow |= NON_COMMERCIAL - NO_DERIVATIVES
        if no_derivatives:
            allow |= NO_DERIVATIVES - NON_COMMERCIAL
        if non_commercial and no_derivatives:
            allow |= NON_COMMERCIAL & NO_DERIVATIVES
        return cls(frozenset(allow), accept_unverified)

    def refusal(self, licence: Licence | None) -> str | None:
        """Why this licence is refused, or None when the policy admits it."""
        if licence is None:
            return "unknown licence"
        if licence.id not in self.allow:
            return f"licence {licence.id} not allowed (allowed: {', '.join(sorted(self.allow))})"
        if not licence.verified and not self.accept_unverified:
            return f"unverified licence (search filter {licence.filter}) not accepted"
        return None

    def admits(self, licence: Licence | None) -> bool:
        return self.refusal(licence) is None
