"""Which tasks a run makes: kinds, seed topics, ids and seeds, decided before any model runs.

The list is a pure function of (domain, kind, count, seed), so a re-run of the same command asks
for the same tasks (that is what makes resume possible), and `--shard I/N` gives machine I every
N-th task of that list: N machines together make exactly the tasks one machine would.

    specs = plan_tasks(load_domain("engineering"), "mixed", 10, seed=0, shard=(1, 2))

A topic file (`vischain topics`, schemas/topics.schema.json) replaces a domain's seed topics:

    domain = with_topics(load_domain("engineering"), load_topic_file(Path("eng-topics.yaml")), "mixed")
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

import yaml

from benchmark_data import DOMAINS_DIR
from schemas.errors import UsageError, read_yaml
from schemas.schema_check import require, schema_problems
from schemas.task import TASK_KINDS

KIND_CHOICES = (*TASK_KINDS, "mixed")


@dataclass(frozen=True)
class TaskSpec:
    task_id: str
    """kind-NNNN, numbered per kind over the whole (unsharded) list."""
    kind: str
    topic: str
    seed: int
    """Seeds every sampled call and the choice shuffle of this task."""


@dataclass(frozen=True)
class Domain:
    """A domain file (benchmark_data/domains/NAME.yaml)."""

    name: str
    description: str
    topics: dict[str, tuple[str, ...]]
    """Seed topics per task kind; the planner turns each into a task of that kind."""
    mix: dict[str, float]
    """Share of each kind when --kind mixed."""


def known_domains() -> list[str]:
    return sorted(p.stem for p in DOMAINS_DIR.glob("*.yaml"))


def load_domain(name: str) -> Domain:
    """A domain file by name (benchmark_data/domains/NAME.yaml), checked; UsageError names --domain."""
    path = DOMAINS_DIR / f"{name}.yaml"
    if not path.is_file():
        raise UsageError(f"--domain: unknown domain {name!r}; known: {', '.join(known_domains())}")
    domain = read_yaml(path, what="domain")
    topics = domain.get("topics") if isinstance(domain, dict) else None
    for kind in TASK_KINDS:
        items = (topics or {}).get(kind)
        if not items or not isinstance(items, list) or not all(isinstance(t, str) and t.strip() for t in items):
            raise UsageError(f"{path}: topics.{kind}: at least one seed topic (a list of strings) is required")
    mix = domain.get("mix", {})
    if not isinstance(mix, dict) or set(mix) - set(TASK_KINDS) or not any(mix.values()) \
            or not all(isinstance(v, (int, float)) and v >= 0 for v in mix.values()):
        raise UsageError(f"{path}: mix: give a share for some of {', '.join(TASK_KINDS)}")
    return Domain(name, str(domain.get("description", "")), {k: tuple(topics[k]) for k in TASK_KINDS},
                  {k: float(v) for k, v in mix.items()})


@dataclass(frozen=True)
class TopicFile:
    """A topic file, checked against schemas/topics.schema.json."""

    path: Path
    domain: str
    topics: dict[str, tuple[str, ...]]
    """Seed topics per task kind; a kind may be missing."""
    provenance: dict
    """Which model, prompt, seed and threshold made them, and counts before and after near-duplicate removal."""

    def digest(self) -> str:
        """SHA-256 over the domain and topics: what a run made from this file is bound to (not the path)."""
        return hashlib.sha256(json.dumps({"domain": self.domain, "topics": self.topics}, sort_keys=True)
                              .encode()).hexdigest()


def load_topic_file(path: Path, flag: str = "--topics") -> TopicFile:
    """A topic file, checked; UsageError names the flag, the file and the field."""
    if not path.is_file():
        raise UsageError(f"{flag}: no such file: {path}")
    data = read_yaml(path, what="topic file")
    problems = schema_problems("topics", data, str(path))
    if problems:
        raise UsageError(f"{flag}: {problems[0]}")
    return TopicFile(path, data["domain"], {k: tuple(v) for k, v in data["topics"].items()}, data["provenance"])


def topic_file_text(domain: str, topics: dict[str, list[str]], provenance: dict) -> str:
    """The YAML of a topic file, checked against its schema first (a bug, not the user, would fail it)."""
    data = {"domain": domain, "topics": topics, "provenance": provenance}
    require("topics", data, "topic file")
    header = "# Seed topics for `vischain generate --domain {} --topics FILE`, written by `vischain topics`.\n"
    return header.format(domain) + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)


def with_topics(domain: Domain, topic_file: TopicFile, kind: str) -> Domain:
    """The domain with the file's topics instead of its own for every kind the file has; UsageError when
    the file is another domain's or lacks a kind the run asks for (`kind`, or the domain's mix)."""
    where = f"--topics: {topic_file.path}"
    if topic_file.domain != domain.name:
        raise UsageError(f"{where} holds topics for domain {topic_file.domain!r}, not {domain.name!r} (--domain)")
    needed = [kind] if kind != "mixed" else [k for k in TASK_KINDS if domain.mix.get(k, 0) > 0]
    missing = [k for k in needed if k not in topic_file.topics]
    if missing:
        raise UsageError(f"{where} has no {missing[0]} topics, and --kind {kind} makes {missing[0]} tasks")
    return Domain(domain.name, domain.description, {**domain.topics, **topic_file.topics}, domain.mix)


def parse_shard(text: str | None) -> tuple[int, int]:
    """"2/3" -> (2, 3); None -> (1, 1)."""
    if text is None:
        return 1, 1
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard: expected I/N such as 1/4, got {text!r}") from None
    if not 1 <= index <= count:
        raise UsageError(f"--shard: expected 1 <= I <= N, got {text!r}")
    return index, count


def plan_tasks(domain: Domain, kind: str, count: int, seed: int, shard: tuple[int, int] = (1, 1)) -> list[TaskSpec]:
    kinds = [kind] * count if kind != "mixed" else mixed_kinds(domain.mix, count)
    topics = {k: _shuffled(domain.topics[k], f"{seed}:{domain.name}:{k}") for k in TASK_KINDS}
    specs, per_kind = [], dict.fromkeys(TASK_KINDS, 0)
    for task_kind in kinds:
        per_kind[task_kind] += 1
        number = per_kind[task_kind]
        task_id = f"{task_kind}-{number:04d}"
        # Topics repeat once the list runs out; the task seed differs, so the plan does too.
        topic = topics[task_kind][(number - 1) % len(topics[task_kind])]
        specs.append(TaskSpec(task_id, task_kind, topic, _seed(f"{seed}:{domain.name}:{task_id}")))
    index, shards = shard
    return specs[index - 1::shards]


def mixed_kinds(mix: dict[str, float], count: int) -> list[str]:
    """Smooth weighted round robin: every prefix of the list is as close to the mix as it can be."""
    weights = {k: float(mix.get(k, 0)) for k in TASK_KINDS if mix.get(k, 0) > 0}
    total, credit, kinds = sum(weights.values()), dict.fromkeys(weights, 0.0), []
    for _ in range(count):
        for k in weights:
            credit[k] += weights[k]
        best = max(credit, key=lambda k: credit[k])
        credit[best] -= total
        kinds.append(best)
    return kinds


def _shuffled(items: tuple[str, ...], key: str) -> list[str]:
    items = list(items)
    random.Random(key).shuffle(items)
    return items


def _seed(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") % 2**31
