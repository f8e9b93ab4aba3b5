"""Painted images go through the validator: a rejected painting is repainted from a revised prompt,
and a slot whose paintings are all rejected fails its task naming the slot and the last reason.

The real graph runs against the scripted agent server, which rejects every retrieved image here so
that every slot is painted (tiny SD, 64 pixels, one step).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import yaml
from typer.testing import CliRunner

from agents.backends.scripted_server import AgentServer, scripted_profile
from agents.paint_prompt import paint_prompt_messages
from tests.generate_helpers import assert_run_valid
from vischain.cli import app

runner = CliRunner()
SLOTS = 6  # the scripted plan of an ITMR task: 2 steps x (1 correct + 2 distractors)


def profile(tmp_path: Path, base_url: str, **generate) -> Path:
    """The scripted profile with no refine round (a rejected search goes straight to paint) and `generate`."""
    path = scripted_profile(tmp_path, base_url, refine_rounds=0)
    data = yaml.safe_load(path.read_text())
    data["generate"].update(generate)
    path.write_text(yaml.safe_dump(data))
    return path


def generate_one_itmr(tmp_path: Path, profile_path: Path):
    return runner.invoke(app, ["generate", "--domain", "daily", "--config", str(profile_path), "--tasks", "1",
                               "--kind", "itmr", "--out", str(tmp_path / "run")])


def written_paint_prompts(run: Path) -> list[str]:
    """Every painting prompt the model wrote, from the run's call cache."""
    with sqlite3.connect(run / "calls.sqlite") as db:
        replies = [json.loads(text) for (text,) in db.execute("SELECT text FROM model_calls")]
    return [reply["prompt"] for reply in replies if set(reply) == {"prompt"}]


def test_a_rejected_painting_is_repainted_from_a_revised_prompt_and_validated(tiny_models, tmp_path):
    with AgentServer(reject_every=1, reject_painted=1) as server:
        result = generate_one_itmr(tmp_path, profile(tmp_path, server.base_url))
    assert result.exit_code == 0, result.output
    store = assert_run_valid(tmp_path / "run")
    lines = store.read_jsonl("provenance.jsonl")
    assert len(lines) == SLOTS and all(line["synthetic"] for line in lines)
    # The painted image's verdict is the validator's record, not "skipped".
    assert all(line["validator"] == {"verdict": "yes", "reason": "scripted verdict on a painting",
                                     "model": "scripted"} for line in lines)
    assert server.verdicts["painted"] == SLOTS + 1 and server.agents["paint_prompt"] == SLOTS + 1
    # The model wrote each prompt; the rejected slot's second prompt is not its first.
    used = {line["generator"]["prompt"] for line in lines}
    written = written_paint_prompts(tmp_path / "run")
    assert used <= set(written) and len(set(written)) == SLOTS + 1
    [rejected] = set(written) - used
    first_words = rejected.split(",")[0]
    assert [prompt.split(",")[0] for prompt in used].count(first_words) == 1
    assert all(prompt.startswith("photo of ") for prompt in used)


def test_a_slot_out_of_paint_rounds_fails_its_task_naming_slot_and_reason(tiny_models, tmp_path):
    with AgentServer(reject_every=1, reject_painted=10_000) as server:
        result = generate_one_itmr(tmp_path, profile(tmp_path, server.base_url, paint_rounds=1))
    assert result.exit_code == 1, result.output
    store = assert_run_valid(tmp_path / "run")
    assert list(store.tasks()) == []
    [failure] = store.read_jsonl("failures.jsonl")
    assert failure["stage"] == "paint"
    assert failure["reason"] == ("slot q1_a: 2 painted image(s) rejected by the validator, "
                                 "the last because: scripted verdict on a painting")
    # Slots are painted in order, and the first one out of rounds ends the task: 1 + paint_rounds paintings.
    assert server.verdicts["painted"] == 2 and server.agents["paint_prompt"] == 2


def test_the_template_option_paints_the_fixed_prompt_without_a_model_call(tiny_models, tmp_path):
    with AgentServer(reject_every=1) as server:
        result = generate_one_itmr(tmp_path, profile(tmp_path, server.base_url, paint_prompt="template"))
    assert result.exit_code == 0, result.output
    store = assert_run_valid(tmp_path / "run")
    plan = json.loads(next(ref.folder for ref in store.tasks()).joinpath("plan.json").read_text())
    descriptions = {image["description"] for step in plan["steps"] for image in step["images"]}
    prompts = {line["generator"]["prompt"] for line in store.read_jsonl("provenance.jsonl")}
    assert prompts == {f"a clear photo of {d}" for d in descriptions}
    assert server.agents["paint_prompt"] == 0 and server.verdicts["painted"] == SLOTS


def test_the_paint_prompt_request_carries_slot_task_and_rejections():
    messages = paint_prompt_messages(description="a rusty gear", role="distractor", task_title="Fix a gearbox",
                                     step_text="Which part comes out first?", max_chars=120,
                                     rejections=[f"reason {i}" for i in range(6)])
    text = messages[1]["content"]
    assert "It must show: a rusty gear" in text and "plausible but wrong option" in text
    assert "Task: Fix a gearbox" in text and "This step: Which part comes out first?" in text
    assert "reason 5" in text and "reason 2" in text and "reason 1" not in text  # the last four only
    assert "at most 120 characters" in text
    fresh = paint_prompt_messages(description="a rusty gear", role="correct", task_title="t", step_text="",
                                  rejections=[], max_chars=120)[1]["content"]
    assert "rejected" not in fresh and "This step" not in fresh
