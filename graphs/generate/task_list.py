"""Which tasks a run makes: kinds, seed topics, ids and seeds, decided before any model runs.

The list is a pure function of (domain, kind, count, seed), so a re-run of the same command asks
for the same tasks (that is what makes resume possible), and `--shard I/N` gives machine I every
N-th task of that list: N machines together make exactly the tasks one machine would.

    specs = plan_tasks(load_domain("engineering"), "mixed", 10, seed=0, shard=(1, 2))
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

import yaml

from benchmark_data import DOMAINS_DIR
from schemas.errors import UsageError
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
    domain = yaml.safe_load(path.read_text())
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
