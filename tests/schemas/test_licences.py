"""Licence ids are normalised from every spelling providers use; the policy is an allowlist."""

from __future__ import annotations

import pytest

from schemas.licences import Licence, LicencePolicy, normalise_licence_id, parse_licence


@pytest.mark.parametrize("text, expected", [
    ("CC0", ("cc0", None)),
    ("CC0 1.0 Universal", ("cc0", "1.0")),
    ("https://creativecommons.org/publicdomain/zero/1.0/", ("cc0", "1.0")),
    ("pdm", ("pdm", None)),
    ("Public Domain Mark 1.0", ("pdm", "1.0")),
    ("http://creativecommons.org/publicdomain/mark/1.0/", ("pdm", "1.0")),
    ("by", ("by", None)),
    ("CC BY 4.0", ("by", "4.0")),
    ("CC-BY-SA-4.0", ("by-sa", "4.0")),
    ("cc by-sa 3.0 unported", ("by-sa", "3.0")),
    ("Attribution-NonCommercial-ShareAlike 4.0 International", ("by-nc-sa", "4.0")),
    ("by-sa-nc", ("by-nc-sa", None)),
    ("https://creativecommons.org/licenses/by-nd/2.0/", ("by-nd", "2.0")),
    ("CC BY-NC-ND 2.5", ("by-nc-nd", "2.5")),
    ("by-nc", ("by-nc", None)),
])
def test_spellings_normalise(text, expected):
    assert normalise_licence_id(text) == expected


@pytest.mark.parametrize("text", ["", "All rights reserved", "sampling+", "nc-sampling+", "CC BY-SA-ND",
                                  "GPL-3.0", "copyright", "cc"])
def test_unknown_licences_are_none(text):
    assert normalise_licence_id(text) is None
    assert parse_licence(text) is None


def test_parse_fills_the_deed_url_and_keeps_a_given_one():
    assert parse_licence("by-sa", "4.0").url == "https://creativecommons.org/licenses/by-sa/4.0/"
    assert parse_licence("cc0", "1.0").url == "https://creativecommons.org/publicdomain/zero/1.0/"
    assert parse_licence("by", None).url is None
    assert parse_licence(None, None, "https://creativecommons.org/licenses/by/3.0/") == Licence(
        "by", "3.0", "https://creativecommons.org/licenses/by/3.0/", True, None)


def test_default_policy_refuses_nc_and_nd():
    policy = LicencePolicy()
    for admitted in ("cc0", "pdm", "by", "by-sa"):
        assert policy.admits(Licence(admitted))
    for refused in ("by-nc", "by-nc-sa", "by-nd", "by-nc-nd"):
        assert policy.refusal(Licence(refused)).startswith(f"licence {refused} not allowed")


def test_nc_and_nd_only_when_asked():
    assert LicencePolicy.default(non_commercial=True).allow == {"cc0", "pdm", "by", "by-sa", "by-nc", "by-nc-sa"}
    assert LicencePolicy.default(no_derivatives=True).allow == {"cc0", "pdm", "by", "by-sa", "by-nd"}
    both = LicencePolicy.default(non_commercial=True, no_derivatives=True)
    assert all(both.admits(Licence(i)) for i in ("by-nc", "by-nd", "by-nc-nd", "by-nc-sa"))


def test_unverified_refused_by_default_accepted_when_set():
    filtered = Licence("by-sa", verified=False, filter="license:ModifyCommercially")
    assert LicencePolicy().refusal(filtered) == \
        "unverified licence (search filter license:ModifyCommercially) not accepted"
    assert LicencePolicy(accept_unverified=True).admits(filtered)
    assert not LicencePolicy(accept_unverified=True).admits(Licence("by-nc", verified=False))


def test_unknown_licence_is_refused():
    assert LicencePolicy().refusal(None) == "unknown licence"


def test_bad_allowlist_names_the_field():
    with pytest.raises(ValueError, match="^allow: unknown licence id 'cc-by'"):
        LicencePolicy(frozenset({"cc-by"}))
    with pytest.raises(ValueError, match="^allow: at least one"):
        LicencePolicy(frozenset())
