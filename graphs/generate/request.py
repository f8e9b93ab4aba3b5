"""A generate run's request, checked before anything is written, and the run folder it is bound to.

    request = make_request(domain="engineering", tasks=3, kind="mixed", profile=load_profile("demo"),
                           out=Path("runs/demo"), concurrency=4, seed=0, shard="1/1")
    store = open_run(request)       # creates the run folder, or reopens it for a resume

A run folder remembers its `binding` in run.json: the same values on a re-run resume it, others
are refused (UsageError naming --out) and the folder is left as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from agents import keywords, paint_prompt, planner, validator
from agents.retrieval.search.folder import read_folder
from graphs.generate.task_list import (
    KIND_CHOICES,
    TaskSpec,
    load_domain,
    load_topic_file,
    parse_shard,
    plan_tasks,
    with_topics,
)
from graphs.profile import Profile
from schemas.errors import UsageError
from schemas.run_db import StoreUnavailable, check_reachable
from schemas.run_store import RunStore

BINDING = ("domain", "kind", "tasks", "seed", "shard", "profile_config", "topics")
"""The run.json config keys a re-run must match to resume the folder."""
PROMPT_MODULES = (planner, keywords, validator, paint_prompt)


@dataclass(frozen=True)
class RunRequest:
    domain: str
    kind: str
    """itmr, icir, iomr or mixed."""
    tasks: int
    """Tasks in the whole (unsharded) list."""
    seed: int
    shard: tuple[int, int]
    """(I, N): this process makes every N-th task starting at the I-th."""
    profile: Profile
    out: Path
    concurrency: int
    specs: tuple[TaskSpec, ...]
    """The tasks this process makes, in order."""
    store_url: str | None = None
    """postgresql://... when the run's shared state lives in PostgreSQL; None: SQLite in the run folder."""
    topics: str | None = None
    """--topics: the topic file's digest (TopicFile.digest); None: the domain's own topics (and so
    absent from older run.json files, which still resume)."""

    def binding(self) -> dict:
        """What run.json records so that a re-run can be told from another config (BINDING keys)."""
        return {"domain": self.domain, "kind": self.kind, "tasks": self.tasks, "seed": self.seed,
                "shard": f"{self.shard[0]}/{self.shard[1]}", "profile_config": self.profile.record(),
                "topics": self.topics}


def make_request(*, domain: str, tasks: int, kind: str, profile: Profile, out: Path | None, concurrency: int,
                 seed: int, shard: str | None, store_url: str | None = None, topics: Path | None = None) -> RunRequest:
    """Everything the run needs, checked; UsageError names the flag or file. Writes nothing."""
    if kind not in KIND_CHOICES:
        raise UsageError(f"--kind: expected one of {', '.join(KIND_CHOICES)}, got {kind!r}")
    for flag, value in (("--tasks", tasks), ("--concurrency", concurrency)):
        if value < 1:
            raise UsageError(f"{flag}: must be at least 1, got {value}")
    domain_data = load_domain(domain)
    topic_file = load_topic_file(Path(topics)) if topics is not None else None
    if topic_file is not None:
        domain_data = with_topics(domain_data, topic_file, kind)
    shard_pair = parse_shard(shard)
    folder = profile.search.folder
    if "folder" in profile.search.providers:
        if not (folder and (folder / "licenses.jsonl").is_file()):
            raise UsageError(f"search.folder: {folder} has no licenses.jsonl (profile {profile.name})")
        try:
            read_folder(folder)  # a malformed listing would fail every search of the run
        except (ValueError, UnicodeDecodeError) as err:
            raise UsageError(f"search.folder: {err}") from None
    out = Path(out) if out else Path("runs") / f"{domain}-{profile.name}"
    if store_url is not None:
        if not store_url.startswith(("postgresql://", "postgres://")):
            raise UsageError(f"--store: expected postgresql://USER@HOST[:PORT]/DATABASE, got {store_url[:60]!r}")
        try:
            check_reachable(store_url)  # before anything is written
        except StoreUnavailable as err:
            raise UsageError(str(err)) from None
    request = RunRequest(domain, kind, tasks, seed, shard_pair, profile, out, concurrency,
                         tuple(plan_tasks(domain_data, kind, tasks, seed, shard_pair)), store_url,
                         topic_file.digest() if topic_file is not None else None)
    check_out_folder(out, request.binding())
    return request


def check_out_folder(out: Path, binding: dict) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out: {out} exists and is not a folder")
    if (out / "run.json").is_file():
        try:
            config = json.loads((out / "run.json").read_text()).get("config", {})
        except (OSError, ValueError) as err:
            raise UsageError(f"--out: {out / 'run.json'} is unreadable: {err}") from None
        if not isinstance(config, dict):
            raise UsageError(f"--out: {out / 'run.json'}: config is not an object")
        for key in BINDING:
            if config.get(key) != json.loads(json.dumps(binding[key])):
                raise UsageError(f"--out: {out} was made by another config ({key} differs: "
                                 f"{_short(config.get(key))} there, {_short(binding[key])} now); use another --out")
        if not os.access(out, os.W_OK):
            raise UsageError(f"--out: cannot write to {out}")
        return
    if out.is_dir() and any(out.iterdir()):
        raise UsageError(f"--out: {out} is not empty and is not a run folder")
    parent = out
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UsageError(f"--out: cannot create {out}: {parent} is not a writable folder")


def _short(value) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 40 else f"{text[:37]}..."


def open_run(request: RunRequest) -> RunStore:
    """The run folder: reopened (stale staging removed) when it exists, else created with its binding."""
    out, profile = request.out, request.profile
    if (out / "run.json").is_file():
        store = RunStore.open(out)
        store.remove_stale_staging()
        store.set_status("incomplete")  # until this run of the command finishes
        return store
    models = {role: profile.agent(role).model for role in ("planner", "keywords", "validator")}
    models["painter"] = profile.painter.model
    config = {**request.binding(), "command": "generate", "profile": profile.name, "models": models,
              "licences": profile.record()["licences"], "prompts_hash": prompts_hash()}
    try:
        store = RunStore.create(out, config, seed=request.seed)
        store.update_run(store="postgres" if request.store_url else "sqlite")
        return store
    except OSError as err:
        raise UsageError(f"--out: cannot create {out}: {err.strerror or err}") from None


def prompts_hash() -> str:
    """SHA-256 over the agents' prompt code, so a dataset card can say which prompts made it."""
    digest = hashlib.sha256()
    for module in PROMPT_MODULES:
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()
