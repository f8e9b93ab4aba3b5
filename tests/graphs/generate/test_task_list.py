"""Which tasks a run makes: deterministic, sharded without overlap, mixed by the domain's shares."""

from __future__ import annotations

from collections import Counter

import pytest

from graphs.generate.task_list import load_domain, mixed_kinds, parse_shard, plan_tasks
from schemas.errors import UsageError


def test_shards_split_the_task_list_exactly():
    domain = load_domain("engineering")
    whole = plan_tasks(domain, "mixed", 11, seed=4)
    shards = [plan_tasks(domain, "mixed", 11, seed=4, shard=(i, 3)) for i in (1, 2, 3)]
    ids = [spec.task_id for shard in shards for spec in shard]
    assert sorted(ids) == sorted(spec.task_id for spec in whole) and len(set(ids)) == 11
    assert plan_tasks(domain, "mixed", 11, seed=4) == whole  # same command, same tasks
    assert plan_tasks(domain, "mixed", 11, seed=5) != whole


def test_mixed_kinds_follow_the_shares_at_every_prefix():
    kinds = mixed_kinds({"itmr": 0.4, "icir": 0.3, "iomr": 0.3}, 10)
    assert Counter(kinds) == {"itmr": 4, "icir": 3, "iomr": 3}
    assert set(kinds[:3]) == {"itmr", "icir", "iomr"}
    assert mixed_kinds({"itmr": 1.0}, 3) == ["itmr"] * 3


def test_one_kind_numbers_tasks_and_repeats_topics_with_new_seeds():
    domain = load_domain("daily")
    specs = plan_tasks(domain, "icir", len(domain.topics["icir"]) + 1, seed=0)
    assert [s.task_id for s in specs[:2]] == ["icir-0001", "icir-0002"]
    assert specs[0].topic == specs[-1].topic and specs[0].seed != specs[-1].seed


@pytest.mark.parametrize("text, message", [("2", "expected I/N"), ("0/2", "expected 1 <= I <= N"),
                                           ("a/b", "expected I/N")])
def test_bad_shards_name_the_flag(text, message):
    with pytest.raises(UsageError, match=f"--shard: {message}"):
        parse_shard(text)
