"""Licences: the vocabulary (eight ids, their versions and jurisdiction ports), the licence a
provenance line records, and the policy that decides what a run may download.

Reading a provider's licence statement is schemas/licence_grammar.py's job: it accepts a statement
only when the whole of it names exactly one of these licences.

`LicencePolicy` is the allowlist a run uses; the default admits only licences that allow commercial
use and derivatives (CC0, Public Domain Mark, CC BY, CC BY-SA).

    policy = LicencePolicy.default(non_commercial=True)       # the user asked for NC too
    licence = parse_licence("CC BY-NC 4.0", verified=True)    # schemas.licence_grammar
    policy.refusal(licence)                                   # None: admitted
"""

from __future__ import annotations

from dataclasses import dataclass

LICENCE_IDS = ("cc0", "pdm", "by", "by-sa", "by-nc", "by-nc-sa", "by-nd", "by-nc-nd")
DEFAULT_ALLOW = frozenset({"cc0", "pdm", "by", "by-sa"})
NON_COMMERCIAL = frozenset({"by-nc", "by-nc-sa", "by-nc-nd"})
NO_DERIVATIVES = frozenset({"by-nd", "by-nc-nd"})

VERSIONS = ("1.0", "2.0", "2.1", "2.5", "3.0", "4.0")
"""Every version CC published of the six BY licences. CC0 and the Public Domain Mark exist only as 1.0."""

# The jurisdiction ports CC published, per version (the legal-code folders of
# creativecommons/cc-legal-tools-data). A port is a different legal text, so it must belong to its
# version: "CC BY 4.0 DE" names no licence. 2.1 exists only as ports; 4.0, CC0 and the PDM have none.
PORTS = {
    "1.0": frozenset({"fi", "il", "nl"}),
    "2.0": frozenset({"at", "au", "be", "br", "ca", "cl", "de", "es", "fr", "hr", "it", "jp", "kr", "nl", "pl",
                      "tw", "uk", "za"}),
    "2.1": frozenset({"au", "ca", "es", "jp"}),
    "2.5": frozenset({"ar", "au", "bg", "br", "ca", "ch", "cn", "co", "dk", "es", "hr", "hu", "il", "in", "it",
                      "mk", "mt", "mx", "my", "nl", "pe", "pl", "pt", "scotland", "se", "si", "tw", "za"}),
    "3.0": frozenset({"am", "at", "au", "az", "br", "ca", "ch", "cl", "cn", "cr", "cz", "de", "ec", "ee", "eg",
                      "es", "fr", "ge", "gr", "gt", "hk", "hr", "ie", "igo", "it", "lu", "nl", "no", "nz", "ph",
                      "pl", "pr", "pt", "ro", "rs", "sg", "th", "tw", "ug", "us", "ve", "vn", "za"}),
}
ALL_PORTS = frozenset().union(*PORTS.values())


@dataclass(frozen=True)
class Licence:
    """What we know about one image's licence, in the shape provenance.jsonl records."""

    id: str
    """Normalised id, one of LICENCE_IDS."""
    version: str | None = None
    """Licence version such as "4.0"; None when the provider does not say."""
    url: str | None = None
    """The licence deed; derived from id, version and port when the provider gives none."""
    verified: bool = True
    """True when the provider states this licence for this image; False when it comes from a search filter."""
    filter: str | None = None
    """The search filter that produced the image, recorded when verified is False."""
    port: str | None = None
    """Jurisdiction port such as "de" or "scotland" (CC BY-SA 3.0 DE); None for the international licence."""

    def record(self) -> dict:
        """The `licence` object of a provenance line; `port` only when there is one, as lines written
        before ports were read have none."""
        record = {"id": self.id, "version": self.version, "url": self.url, "verified": self.verified,
                  "filter": self.filter}
        if self.port is not None:
            record["port"] = self.port
        return record


@dataclass(frozen=True)
class LicenceParse:
    """How a licence statement was read: the licence, or why none was accepted."""

    licence: Licence | None
    """The one licence the whole statement names; None when refused."""
    reason: str | None = None
    """Why the statement was refused (one line, quoting what was not understood); None when accepted."""


def licence_url(licence_id: str, version: str | None, port: str | None = None) -> str | None:
    """The Creative Commons deed URL, when the version is known."""
    if version is None:
        return None
    if licence_id == "cc0":
        return f"https://creativecommons.org/publicdomain/zero/{version}/"
    if licence_id == "pdm":
        return f"https://creativecommons.org/publicdomain/mark/{version}/"
    # Version 1.0 put ND before NC in the path (/licenses/by-nd-nc/1.0/); there is no by-nc-nd/1.0.
    path = "by-nd-nc" if licence_id == "by-nc-nd" and version == "1.0" else licence_id
    return f"https://creativecommons.org/licenses/{path}/{version}/" + (f"{port}/" if port else "")


# ---- The policy ----------------------------------------------------------------------------------

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
