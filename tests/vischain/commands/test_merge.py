"""`vischain merge`: shards made apart join into one valid run; a reused image keeps one task."""

from __future__ import annotations

from typer.testing import CliRunner

from agents.backends.scripted_server import AgentServer, scripted_profile
from tests.generate_helpers import assert_run_valid
from vischain.cli import app

runner = CliRunner()


def test_two_shards_merge_into_one_valid_run(tiny_models, drawn_image_folder, tmp_path):
    outs = [tmp_path / "shard1", tmp_path / "shard2"]
    with AgentServer() as server:
        profile = scripted_profile(tmp_path, server.base_url, images=drawn_image_folder)
        for index, out in enumerate(outs, start=1):
            result = runner.invoke(app, ["generate", "--domain", "engineering", "--config", str(profile), "--tasks",
                                         "5", "--shard", f"{index}/2", "--out", str(out)])
            assert result.exit_code == 0, result.output
    made = [len(assert_run_valid(out).tasks()) for out in outs]
    assert made == [3, 2]
    merged = tmp_path / "merged"
    result = runner.invoke(app, ["merge", *map(str, outs), "--out", str(merged)])
    assert result.exit_code == 0, result.output
    store = assert_run_valid(merged)
    # Both shards searched the same folder from its top, so shard 2 reused shard 1's images.
    left_out = store.read_jsonl("failures.jsonl")
    assert len(store.tasks()) + len(left_out) == 5 and all(line["stage"] == "merge" for line in left_out)
    shas = [line["sha256"] for line in store.read_jsonl("provenance.jsonl") if not line["synthetic"]]
    assert len(shas) == len(set(shas))
    ids = [ref.task_id for ref in store.tasks("itmr")]
    assert ids == [f"itmr-{n:04d}" for n in range(1, len(ids) + 1)]
    assert runner.invoke(app, ["validate", str(merged)]).exit_code == 0
    assert store.run["config"]["command"] == "merge" and len(store.run["config"]["sources"]) == 2


def test_merge_refuses_an_existing_out_folder(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    result = runner.invoke(app, ["merge", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "--out:" in result.output
    assert (tmp_path / "out" / "keep.txt").read_text() == "x"
