"""Profiles: which models, search providers and limits a run uses.

A profile is a YAML file in benchmark_data/profiles/ (`demo`, `local`, `paper`) or any path given
with `--config`. It is checked against schemas/profile.schema.json before anything starts, and
the effective profile is recorded in the run's run.json.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import yaml

from benchmark_data import PROFILES_DIR
from schemas.errors import UsageError
from schemas.licences import DEFAULT_ALLOW
from schemas.schema_check import schema_problems

PROFILE_DIR = PROFILES_DIR
BENCHMARK_DATA = PROFILE_DIR.parent

LICENCE_DEFAULTS = {"allow": sorted(DEFAULT_ALLOW), "accept_unverified": False}


def known_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def load_profile(name_or_path: str, flag: str = "--profile") -> dict:
    """A profile by name or path, with defaults filled in; UsageError names the flag or field."""
    path = Path(name_or_path)
    if not path.is_file():
        path = PROFILE_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            raise UsageError(f"{flag}: unknown profile {name_or_path!r}; known: {', '.join(known_profiles())}")
    try:
        profile = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise UsageError(f"{flag}: {path} is not YAML: {str(err).splitlines()[0]}") from None
    problems = schema_problems("profile", profile, str(path))
    if problems:
        raise UsageError(str(problems[0]))
    from graphs.generate_context import GenerateSettings  # here: it imports the agents

    try:
        profile["generate"] = asdict(GenerateSettings.from_profile(profile.get("generate", {})))
    except ValueError as err:
        raise UsageError(f"{path}: {err}") from None
    profile["licences"] = {**LICENCE_DEFAULTS, **profile.get("licences", {})}
    folder = profile["search"].get("folder")
    if folder and not Path(folder).is_absolute():
        profile["search"]["folder"] = str(BENCHMARK_DATA / folder)
    profile["name"] = path.stem
    return profile
