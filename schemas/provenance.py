"""provenance.jsonl: one line per image in a task folder, saying where it came from and under which
licence (schemas/provenance.schema.json). This module builds the lines and judges their licences;
the run store appends them.

    line = painted_line(file, sha256, phash, generator={"model": ..., "seed": ..., "prompt": ...})
    licence_problems(line, policy)      # [] when the image may be in a task
"""

from __future__ import annotations

from typing import TypedDict

from schemas.licences import Licence, LicencePolicy

PAINTER = "painter"
"""The provider name of every synthetic image."""


class LicenceRecord(TypedDict):
    id: str
    version: str | None
    url: str | None
    verified: bool
    filter: str | None


class Generator(TypedDict):
    model: str
    seed: int
    prompt: str


class Verdict(TypedDict, total=False):
    verdict: str
    """yes, no or skipped."""
    reason: str
    model: str


class ProvenanceLine(TypedDict):
    file: str
    """Run-relative path of the image (tasks/<kind>/<id>/<name>, or images/<sha256>.<ext> in the pool)."""
    sha256: str
    phash: str
    provider: str
    source_url: str | None
    page_url: str | None
    licence: LicenceRecord | None
    creator: str | None
    attribution: str | None
    synthetic: bool
    generator: Generator | None
    validator: Verdict | None


def synthetic_problems(line: ProvenanceLine) -> list[str]:
    """A synthetic image is exempt from the licence policy only when the painter made it and says
    how: its generator model, seed and prompt. Anything else marked synthetic is refused."""
    problems = []
    if line.get("provider") != PAINTER:
        problems.append(f"marked synthetic but its provider is {line.get('provider')!r}, not the painter")
    generator = line.get("generator")
    if not isinstance(generator, dict):
        return problems + ["marked synthetic without its generator (model, seed, prompt)"]
    for key, kind in (("model", str), ("seed", int), ("prompt", str)):
        value = generator.get(key)
        if not isinstance(value, kind) or isinstance(value, bool) or (kind is str and not value.strip()):
            problems.append(f"synthetic image's generator.{key} is missing or not a {kind.__name__}")
    if line.get("licence") is not None:
        problems.append("marked synthetic but carries a retrieved image's licence")
    return problems


def painted_line(file: str, sha256: str, phash: str, generator: Generator, validator: Verdict) -> ProvenanceLine:
    """The line of an image a diffusion model painted: synthetic, no licence, its generator named."""
    return {"file": file, "sha256": sha256, "phash": phash, "provider": PAINTER, "source_url": None,
            "page_url": None, "licence": None, "creator": None, "attribution": None, "synthetic": True,
            "generator": generator, "validator": validator}


def licence_problems(line: ProvenanceLine, policy: LicencePolicy) -> list[str]:
    """Why a provenance line's image may not be in a task (empty when it may)."""
    if line.get("synthetic"):
        return synthetic_problems(line)
    record = line.get("licence")
    if not record:
        return ["licence unknown and image not synthetic"]
    licence = Licence(record["id"], record.get("version"), record.get("url"), bool(record.get("verified")),
                      record.get("filter"))
    refusal = policy.refusal(licence)
    return [refusal] if refusal else []
