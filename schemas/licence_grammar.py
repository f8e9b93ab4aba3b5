"""Licence statements: read what a provider says as exactly one licence, or refuse it with the reason.

A licence statement has legal weight, so it is read as a whole or not at all. Providers spell
licences many ways ("CC BY-SA 4.0", "CC-BY-SA-4.0", "by-sa" with a separate version, "Attribution-
ShareAlike License", "CC BY-SA 3.0 DE", a creativecommons.org URL); a small grammar reads each of
them as one of eight ids, with the version and jurisdiction port when stated:

    cc0, pdm, by, by-sa, by-nc, by-nc-sa, by-nd, by-nc-nd

    parse_licence_statement("CC BY-SA 3.0 DE").licence   # Licence("by-sa", "3.0", ".../by-sa/3.0/de/", port="de")
    parse_licence_statement("CC0 or CC BY-NC").reason    # "more than one licence: 'or cc by nc' after ..."

The grammar. Letters are read case-blind; spaces, tabs, newlines, the no-break space, hyphens,
underscores and slashes separate words, and may be missing between words ("CCBY4.0", "ccbysa"):

    statement = licence [ "(" licence ")" ]          the bracket restates the same licence
    licence   = url | named
    named     = [brand] kind [noun] [version] [port] [qualifier] [noun]
    brand     = "CC" | "Creative Commons"
    kind      = "CC0" | brand "Zero" | brand "0" | "Public Domain Dedication"             -> cc0
              | "PDM" | "Public Domain Mark" | "Public Domain"                           -> pdm
                ("Public Domain" alone is the PDM; restated "(CC0)" it is CC0)
              | "BY" { "SA" | "NC" | "ND" }   (or the words: Attribution, ShareAlike, Share Alike,
                NonCommercial, Non Commercial, NoDerivs, NoDerivatives, No Derivatives,
                No Derivative Works; BY first, the others once each in any order, never SA with ND)
    version   = ["version" | "v"] ("1.0" | "2.0" | "2.1" | "2.5" | "3.0" | "4.0")
    port      = a jurisdiction CC ported that version to, as a separate word: "de", "fr", "scotland", "igo", ...
    qualifier = "International" (4.0) | "Unported" (3.0) | "Generic" (1.0 to 2.5) | "Universal" (CC0, PDM)
    noun      = "License" | "Licence" | "Public Domain Dedication" (after CC0), at most once
    url       = [[http[s]:]//][www.]creativecommons.org/ path ["?" tracking]
    path      = "licenses/" elements "/" version "/" [port "/"] [document]
              | "publicdomain/zero/1.0/" [document] | "publicdomain/mark/1.0/" [document]
    document  = ("deed" | "legalcode") ["." language] [".txt"]
    tracking  = "ref=openverse" ["&atype=" ("rich" | "html" | "plain")]   (Openverse's attribution links)

Harmless words, and why only these: the words CC itself puts in a licence's title (the brand,
"License", "International", "Unported", "Generic", "Universal", CC0's "Public Domain Dedication"),
"version" before a number, and a bracketed restatement of the same licence ("Public Domain
Dedication (CC0)", "Attribution 4.0 International (CC BY 4.0)": CC's own deed titles read so). None
of them can narrow or widen a licence. Everything else is refused with its reason: a second licence,
"or", "and", "plus", "with", "except", "only", "some rights reserved", prose before or after, text
after a URL, an NC or ND word outside the licence's name (inside it, it names the restricted
licence), a version or port CC never published (4.0, CC0 and the PDM have no ports; 2.1 exists only
ported), a qualifier that contradicts the version, any non-ASCII letter (look-alikes such as Cyrillic
"С" are not read as Latin), an empty statement or one longer than MAX_STATEMENT characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from schemas.licences import ALL_PORTS, PORTS, VERSIONS, Licence, LicenceParse, licence_url

MAX_STATEMENT = 200
"""Characters. The longest real statement (a deed title with its bracketed id) is about 110; longer is prose."""


class _Refused(Exception):
    """Raised inside the grammar with the reason; parse_licence_statement turns it into a LicenceParse."""


# ---- Public entry points -------------------------------------------------------------------------

def parse_licence_statement(text: object, version: object = None, url: object = None, *,
                            verified: bool = True, filter: str | None = None) -> LicenceParse:
    """Read a provider's licence: its words (`text`), a separately given `version` ("4.0", as
    Openverse sends it) and a licence `url`. Each that is given must read whole, and all must name the
    same licence; the words may be empty when the URL says it all. Never raises: anything unreadable,
    of the wrong type included, is a refusal with its reason."""
    try:
        reading = _read_inputs(text, version, url)
    except _Refused as refusal:
        return LicenceParse(None, str(refusal))
    given_url = url if isinstance(url, str) and url.strip() else None
    return LicenceParse(Licence(reading.id, reading.version,
                                given_url or licence_url(reading.id, reading.version, reading.port),
                                verified, filter, reading.port))


def parse_licence(text: str | None, version: str | None = None, url: str | None = None, *,
                  verified: bool = True, filter: str | None = None) -> Licence | None:
    """A Licence from a provider's words (or its URL when `text` is empty); None when refused.
    `parse_licence_statement` says why."""
    return parse_licence_statement(text, version, url, verified=verified, filter=filter).licence


def normalise_licence_id(text: str) -> tuple[str, str | None] | None:
    """("by-sa", "4.0") from "CC BY-SA 4.0", a SPDX id, or a creativecommons.org URL; None if refused."""
    licence = parse_licence_statement(text).licence
    return (licence.id, licence.version) if licence else None


# ---- What a statement says -----------------------------------------------------------------------

@dataclass(frozen=True)
class _Reading:
    """One licence as read from one input, before the inputs are checked against each other."""

    id: str
    version: str | None = None
    port: str | None = None
    qualifier: str | None = None
    """"international", "unported", "generic" or "universal": checked against the version at the end."""
    bare_public_domain: bool = False
    """Just "public domain": read as the PDM alone, but it agrees with a bracketed "(CC0)"."""


def _read_inputs(text: object, version: object, url: object) -> _Reading:
    """The one licence that every given input names."""
    text, version, url = _given(text, "licence"), _given(version, "version"), _given(url, "licence URL")
    if text is None and url is None:
        raise _Refused("no licence given")
    reading = _read_statement(text) if text is not None else None
    if url is not None:
        from_url = _read_url(url, "licence URL: ")
        reading = _agree(reading, from_url, "the licence URL") if reading else from_url
    if version is not None:
        if version not in VERSIONS:
            raise _Refused(f"version {version!r} is not a Creative Commons version ({', '.join(VERSIONS)})")
        reading = _agree(reading, _Reading(reading.id, version), "the separate version")
    _check(reading)
    return reading


def _given(value: object, what: str) -> str | None:
    """The stripped text of one input; None when absent or empty. Providers' JSON can hold anything."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Refused(f"{what} is not text but {type(value).__name__} {value!r:.60}")
    value = value.strip()
    return value or None


def _read_statement(text: str) -> _Reading:
    """statement = licence [ "(" licence ")" ]: the bracket may restate the licence, nothing else."""
    _check_characters(text)
    if "(" not in text and ")" not in text:
        return _read_licence(text)
    bracketed = re.fullmatch(r"([^()]*)\(([^()]*)\)([^()]*)", text)
    if bracketed is None:
        raise _Refused(f"brackets other than one restatement of the licence: {text!r}")
    before, inside, after = bracketed.groups()
    outside = f"{before} {after}"
    if not inside.strip():
        raise _Refused(f"empty brackets: {text!r}")
    if not outside.strip():
        raise _Refused(f"only a bracket, no licence before it: {text!r}")
    restated = _read_licence(inside, "in brackets: ")
    return _agree(_read_licence(outside), restated, f"the bracketed {inside.strip()!r}")


def _check_characters(text: str) -> None:
    if len(text) > MAX_STATEMENT:
        raise _Refused(f"longer than {MAX_STATEMENT} characters: prose, not a licence statement")
    for char in text:
        if char not in _SPACES and not (char.isascii() and char.isprintable()):
            raise _Refused(f"character {char!r} (U+{ord(char):04X}) is not printable ASCII; look-alike "
                           f"letters are not read as Latin ones")


def _read_licence(text: str, where: str = "") -> _Reading:
    """licence = url | named."""
    if _looks_like_url(text.strip().lower()):
        return _read_url(text, where)
    return _read_named(text, where)


def _agree(first: _Reading, second: _Reading, what: str) -> _Reading:
    """One reading from two that must name the same licence; what only one of them states is kept."""
    if first.bare_public_domain and second.id in ("cc0", "pdm"):
        first = replace(first, id=second.id, bare_public_domain=False)
    if second.bare_public_domain and first.id in ("cc0", "pdm"):
        second = replace(second, id=first.id, bare_public_domain=False)
    if first.id != second.id:
        raise _Refused(f"more than one licence: {what} names {second.id}, the statement {first.id}")
    merged = first
    for field in ("version", "port", "qualifier"):
        mine, theirs = getattr(first, field), getattr(second, field)
        if mine and theirs and mine != theirs:
            raise _Refused(f"{field}s disagree: {what} says {theirs}, the statement {mine}")
        merged = replace(merged, **{field: mine or theirs})
    return replace(merged, bare_public_domain=first.bare_public_domain and second.bare_public_domain)


def _check(reading: _Reading) -> None:
    """Only versions, ports and qualifiers CC published for this licence."""
    name, version, port, qualifier = reading.id, reading.version, reading.port, reading.qualifier
    if name in ("cc0", "pdm"):
        if version not in (None, "1.0"):
            raise _Refused(f"{name} exists only as version 1.0, not {version}")
        if port:
            raise _Refused(f"{name} has no jurisdiction ports, not {port!r}")
        if qualifier not in (None, "universal"):
            raise _Refused(f"{name} is not called {qualifier.title()}")
        return
    if port and version is None:
        raise _Refused(f"jurisdiction port {port!r} without a version")
    if port and port not in PORTS.get(version, ()):
        ported = ", ".join(v for v in VERSIONS if port in PORTS.get(v, ())) or "no version"
        raise _Refused(f"CC published no {version} licence for jurisdiction {port!r} (it did for {ported})")
    if version == "2.1" and not port:
        raise _Refused("version 2.1 exists only as a jurisdiction port, and none is stated")
    if qualifier == "universal":
        raise _Refused(f"{name} is not called Universal (only CC0 and the Public Domain Mark are)")
    if qualifier:
        if port:
            raise _Refused(f"{qualifier.title()} contradicts the jurisdiction port {port!r}")
        if version and version not in _QUALIFIED_VERSIONS[qualifier]:
            raise _Refused(f"{qualifier.title()} contradicts version {version}")


# The qualifier CC puts in a licence's title, per version: 4.0 is International, 3.0 Unported, older
# licences Generic; CC0 and the PDM are Universal.
_QUALIFIED_VERSIONS = {"international": ("4.0",), "unported": ("3.0",), "generic": ("1.0", "2.0", "2.5"),
                       "universal": ()}


# ---- URLs ----------------------------------------------------------------------------------------

_HOSTS = ("creativecommons.org", "www.creativecommons.org")
_URL_ELEMENTS = frozenset({"by", "sa", "nc", "nd"})
_DOCUMENT = re.compile(r"(deed|legalcode)(\.[a-z]{2,3}([-_@][a-z0-9]+)*)?(\.txt)?")
# The query Openverse's attribution links add to a deed URL; it selects nothing on CC's site.
_TRACKING = frozenset({"ref=openverse", "atype=rich", "atype=html", "atype=plain"})


def _looks_like_url(text: str) -> bool:
    return text.startswith(("http://", "https://", "//", *_HOSTS))


def _read_url(text: str, where: str = "") -> _Reading:
    """url = [[http[s]:]//][www.]creativecommons.org/path: the whole URL, nothing before or after it."""
    _check_characters(text)
    url = text.strip().lower()
    for scheme in ("https://", "http://", "//"):
        if url.startswith(scheme):
            url = url[len(scheme):]
            break
    host, _, rest = url.partition("/")
    if host not in _HOSTS:
        raise _Refused(f"{where}not a creativecommons.org licence URL: {text.strip()!r}")
    if "#" in rest or any(c.isspace() for c in rest):
        raise _Refused(f"{where}more than a licence URL: {text.strip()!r}")
    path, _, query = rest.partition("?")
    if query and not set(query.split("&")) <= _TRACKING:
        raise _Refused(f"{where}a query that is not just Openverse's tracking (ref=openverse): {text.strip()!r}")
    segments = path.removesuffix("/").split("/")
    if "" in segments:
        raise _Refused(f"{where}empty path segment in {text.strip()!r}")
    try:
        return _read_url_path(segments)
    except _Refused as refusal:
        raise _Refused(f"{where}{refusal} in {text.strip()!r}") from None


def _read_url_path(segments: list[str]) -> _Reading:
    """licenses/<elements>/<version>/[<port>/][document] or publicdomain/(zero|mark)/1.0/[document]."""
    category, *rest = segments
    if category == "publicdomain" and rest and rest[0] in ("zero", "mark"):
        reading = _Reading("cc0" if rest[0] == "zero" else "pdm")
    elif category == "licenses" and rest:
        reading = _Reading(_url_elements(rest[0]))
    else:
        raise _Refused("not a licence path")
    if len(rest) < 2 or rest[1] not in VERSIONS:
        raise _Refused("no version" if len(rest) < 2 else f"unknown version {rest[1]!r}")
    reading, tail = replace(reading, version=rest[1]), rest[2:]
    if tail and tail[0] in ALL_PORTS:
        reading, tail = replace(reading, port=tail[0]), tail[1:]
    if tail and _DOCUMENT.fullmatch(tail[0]):
        tail = tail[1:]
    if tail:
        raise _Refused(f"unexpected {'/'.join(tail)!r}")
    return reading


def _url_elements(segment: str) -> str:
    """"by-nc-sa" (or 1.0's "by-nd-nc") as a licence id; URLs spell elements only as short codes."""
    elements = segment.split("-")
    if not set(elements) <= _URL_ELEMENTS:
        raise _Refused(f"{segment!r} is not one of the licences read")
    return _licence_id(elements, segment)


def _licence_id(elements: list[str], as_written: str) -> str:
    """The id of a BY licence from its elements in the order written: BY first, the rest once each."""
    if not elements or elements[0] != "by":
        raise _Refused(f"{as_written!r} is not a licence on its own (every licence read starts with "
                       f"Attribution/BY)")
    rest = elements[1:]
    if len(set(rest)) != len(rest) or "by" in rest:
        raise _Refused(f"a licence element named twice: {as_written!r}")
    if "sa" in rest and "nd" in rest:
        raise _Refused(f"ShareAlike and NoDerivatives exclude each other: {as_written!r}")
    return "-".join(["by", *(e for e in ("nc", "sa", "nd") if e in rest)])


# ---- Named licences: words -----------------------------------------------------------------------

# Characters that separate words. Only the no-break space beyond ASCII: HTML puts it in licence names.
_SPACES = frozenset(" \t\r\n\u00a0")
_SEPARATORS = re.compile(r"[ \t\r\n\u00a0_/-]+")
_NUMBER = re.compile(r"\d+(\.\d+)*")

# A licence's element in every spelling met: the short code and CC's word(s) for it.
_ELEMENT_SPELLINGS = {
    "by": (("by",), ("attribution",)),
    "sa": (("sa",), ("sharealike",), ("share", "alike")),
    "nc": (("nc",), ("noncommercial",), ("non", "commercial")),
    "nd": (("nd",), ("noderivs",), ("noderivatives",), ("no", "derivs"), ("no", "derivatives"),
           ("no", "derivative", "works")),
}
_QUALIFIERS = frozenset(_QUALIFIED_VERSIONS)
# Every word the grammar knows. A run of letters with its separators missing ("ccbysa") is split into
# these, longest first; a word that does not split into them whole stays one unknown word.
_VOCABULARY = sorted(
    {word for spellings in _ELEMENT_SPELLINGS.values() for spelling in spellings for word in spelling}
    | {"cc", "creative", "commons", "cc0", "zero", "pdm", "public", "domain", "mark", "dedication",
       "license", "licence", "version", "v"} | _QUALIFIERS,
    key=len, reverse=True)


@dataclass(frozen=True)
class _Word:
    text: str
    alone: bool
    """Written between separators, not split out of a longer run: only such a word can be a port."""


def _words(text: str) -> list[_Word]:
    words = []
    for run in _SEPARATORS.split(text.lower()):
        pieces = _split_run(run) if run else []
        words += [_Word(piece, len(pieces) == 1) for piece in pieces]
    return words


def _split_run(run: str) -> list[str]:
    """"ccby4.0" -> ["cc", "by", "4.0"]; a run that is not all known words is kept whole ("flickr")."""
    pieces, at = [], 0
    while at < len(run):
        if number := _NUMBER.match(run, at):
            word = number.group()
        else:
            word = next((known for known in _VOCABULARY if run.startswith(known, at)), None)
        if word is None:
            return [run]
        pieces.append(word)
        at += len(word)
    return pieces


class _Cursor:
    """The words of a statement and how far the grammar has read them."""

    def __init__(self, words: list[_Word]):
        self.words, self.at = words, 0

    def next(self) -> _Word | None:
        return self.words[self.at] if self.at < len(self.words) else None

    def take(self, *sequence: str) -> bool:
        """Read `sequence` if the next words are exactly it."""
        ahead = [w.text for w in self.words[self.at:self.at + len(sequence)]]
        if ahead != list(sequence):
            return False
        self.at += len(sequence)
        return True

    def take_one_of(self, *sequences: tuple[str, ...]) -> bool:
        return any(self.take(*sequence) for sequence in sequences)

    def rest(self) -> str:
        return " ".join(w.text for w in self.words[self.at:])

    def read_so_far(self) -> str:
        return " ".join(w.text for w in self.words[:self.at])


def _read_named(text: str, where: str = "") -> _Reading:
    """named = [brand] kind [noun] [version] [port] [qualifier] [noun], and nothing left over."""
    cursor = _Cursor(_words(text))
    try:
        branded = cursor.take("cc") or cursor.take("creative", "commons")
        reading = _public_domain(cursor, branded) or _cc_licence(cursor)
        reading = _tail(cursor, reading)
    except _Refused as refusal:
        raise _Refused(f"{where}{refusal}") from None
    if cursor.next() is not None:
        raise _Refused(f"{where}{_left_over(cursor)}")
    return reading


def _public_domain(cursor: _Cursor, branded: bool) -> _Reading | None:
    """kind -> cc0 or pdm; None when the statement names neither."""
    if cursor.take("cc0") or (branded and cursor.take_one_of(("zero",), ("0",))):
        return _Reading("cc0")
    if cursor.take("public", "domain", "dedication"):  # CC0's own title; Flickr writes it so
        return _Reading("cc0")
    if cursor.take("pdm") or cursor.take("public", "domain", "mark"):
        return _Reading("pdm")
    if cursor.take("public", "domain"):
        return _Reading("pdm", bare_public_domain=True)
    return None


def _cc_licence(cursor: _Cursor) -> _Reading:
    """kind -> one of the six BY licences, from its elements in the order written."""
    elements = []
    while (element := _element(cursor)) is not None:
        elements.append(element)
    if not elements:
        upcoming = cursor.rest()
        raise _Refused(f"not a Creative Commons licence: {upcoming!r}" if upcoming else "no licence named")
    return _Reading(_licence_id(elements, cursor.read_so_far()))


def _element(cursor: _Cursor) -> str | None:
    """The next licence element ("by", "sa", "nc" or "nd") in any of its spellings; None when there is none."""
    for element, spellings in _ELEMENT_SPELLINGS.items():
        if cursor.take_one_of(*spellings):
            return element
    return None


def _tail(cursor: _Cursor, reading: _Reading) -> _Reading:
    """[noun] [version] [port] [qualifier] [noun], each optional, the noun at most once."""
    nouned = _noun(cursor, reading.id)
    if cursor.take_one_of(("version",), ("v",)) and not _is_number(cursor.next()):
        raise _Refused("'version' without a number")
    if _is_number(cursor.next()):
        version = cursor.next().text
        if version not in VERSIONS:
            raise _Refused(f"version {version!r} is not a Creative Commons version ({', '.join(VERSIONS)})")
        cursor.take(version)
        reading = replace(reading, version=version)
    word = cursor.next()
    if word is not None and word.alone and word.text in ALL_PORTS:
        cursor.take(word.text)
        reading = replace(reading, port=word.text)
    word = cursor.next()
    if word is not None and word.text in _QUALIFIERS:
        cursor.take(word.text)
        reading = replace(reading, qualifier=word.text)
    if not nouned:
        _noun(cursor, reading.id)
    return reading


def _noun(cursor: _Cursor, licence_id: str) -> bool:
    if licence_id == "cc0" and cursor.take("public", "domain", "dedication"):
        return True
    return cursor.take_one_of(("license",), ("licence",))


def _is_number(word: _Word | None) -> bool:
    return word is not None and _NUMBER.fullmatch(word.text) is not None


# Words that start a licence: after one licence, they mean a second one.
_LICENCE_START_WORDS = frozenset({"cc", "creative", "by", "attribution", "cc0", "zero", "pdm", "public"})


def _left_over(cursor: _Cursor) -> str:
    """Why the words after the licence refuse it, quoting them and what was read before."""
    rest, read = cursor.rest(), cursor.read_so_far()
    words = set(rest.split())
    if words & _LICENCE_START_WORDS or "creativecommons" in rest:
        kind = "more than one licence"
    elif "commercial" in rest or "nc" in words:
        kind = "a non-commercial term outside the licence"
    elif "deriv" in rest or "nd" in words:
        kind = "a no-derivatives term outside the licence"
    elif words & {"sa", "sharealike", "share", "alike"}:
        kind = "a share-alike term outside the licence"
    else:
        kind = "words that are not part of a licence"
    return f"{kind}: {rest!r} after {read!r}"
