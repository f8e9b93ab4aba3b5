"""Training (TrainRecipe) on the tiny LLaVA-NeXT, CPU: the loss falls and only LoRA weights move, a
kill after epoch 1 resumes at epoch 2 with the same optimizer state, two DDP ranks stay in sync,
and the first losses of a seeded run are pinned so silent changes show."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from peft import PeftConfig
from transformers import AutoModelForImageTextToText

from imagechain.train.checkpoints import latest_checkpoint
from imagechain.train.config import EPOCHS_BY_BUCKET, ConfigError, TrainConfig, load_config
from imagechain.train.scene_features import SceneChainModel
from imagechain.train.trainer import TrainRecipe
from schemas.errors import DataError
from tests.imagechain.story_fixtures import save_storyframes, storyframes_row

RECIPE = "imagechain/recipes/train/tiny-llava.yaml"
ROOT = Path(__file__).resolve().parents[3]
# First three logged losses of `trained` below (seed 0, tiny LLaVA-NeXT v1). A change here means the
# model, data, masks, scene visuals or optimiser changed: update only if that was intended.
PINNED_LOSSES = [6.008453, 5.897099, 5.83455]


@pytest.fixture(scope="module")
def storyframes(tmp_path_factory, tiny_models):
    rows = [storyframes_row(f"v2---s{i}", [f"Story {i} begins with a walk.", f"Then story {i} ends in a jump."])
            for i in range(4)]
    return save_storyframes(tmp_path_factory.mktemp("sf"), {"scene_2/train": rows})


def tiny_config(storyframes, out, *overrides) -> TrainConfig:
    return load_config(ROOT / RECIPE, [f"data=[{storyframes}]", f"output_dir={out}", "limit=2", "warmup_ratio=0",
                                       "learning_rate=1e-2", "per_device_batch_size=1", *overrides])


def lora_and_rest(model) -> tuple[dict, dict]:
    lora, rest = {}, {}
    for name, param in model.named_parameters():
        (lora if "lora_" in name else rest)[name] = param.detach().clone()
    return lora, rest


@pytest.fixture(scope="module")
def trained(storyframes, tmp_path_factory):
    """10 optimizer steps on two stories (5 epochs of 2), merging the adapter at the end."""
    out = tmp_path_factory.mktemp("run")
    recipe = TrainRecipe(tiny_config(storyframes, out, "epochs=5", "merge=true")).setup()
    before = lora_and_rest(recipe.model)
    summary = recipe.train()
    return {"recipe": recipe, "out": out, "summary": summary, "before": before, "after": lora_and_rest(recipe.model)}


def test_ten_steps_drive_the_loss_down(trained):
    losses = [r["loss"] for r in trained["recipe"].last_records]
    assert trained["summary"]["optimizer_steps"] == 10 and len(losses) == 10
    assert losses[-1] < losses[0] - 0.3
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3


def test_only_lora_parameters_change(trained):
    (lora_before, rest_before), (lora_after, rest_after) = trained["before"], trained["after"]
    assert lora_before and rest_before
    for name in lora_before:
        assert not torch.equal(lora_before[name], lora_after[name]), f"{name} did not change"
    for name in rest_before:
        assert torch.equal(rest_before[name], rest_after[name]), f"{name} changed"


def test_first_losses_are_pinned(trained):
    losses = [r["loss"] for r in trained["recipe"].last_records[:3]]
    assert losses == pytest.approx(PINNED_LOSSES, abs=1e-3)


def test_outputs_adapter_card_metrics_checkpoints_and_merge(trained):
    out = trained["out"]
    adapter = out / "adapter"
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md"} <= {p.name for p in adapter.iterdir()}
    assert PeftConfig.from_pretrained(str(adapter)).r == 8
    card = (adapter / "README.md").read_text()
    assert "tiny:llava-next" in card and "| `lora_r` | `8` |" in card and "optimizer steps: 10" in card
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == list(range(1, 11)) and all(r["tokens_per_s"] > 0 for r in lines)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [f"epoch-{i}" for i in range(1, 6)]
    assert (out / "merged" / "config.json").is_file() and (out / "merged" / "model.safetensors").is_file()


def test_merged_model_matches_the_adapter(trained):
    recipe = trained["recipe"]
    merged = AutoModelForImageTextToText.from_pretrained(str(trained["out"] / "merged"))

    batch = next(iter(recipe.loader))
    recipe.model.eval()
    with torch.no_grad():
        expected = recipe.model(**batch).logits
        got = SceneChainModel(merged)(**batch).logits
    assert torch.allclose(got, expected, atol=1e-4)


def test_qwen2_vl_trains_with_checkpointing_and_assistant_loss(storyframes, tmp_path):
    config = tiny_config(storyframes, tmp_path, "model=tiny:qwen2-vl", "epochs=1", "max_steps=2", "loss=assistant",
                         "gradient_checkpointing=true", "scene_visual=last")
    recipe = TrainRecipe(config).setup()
    lora_before, rest_before = lora_and_rest(recipe.model)
    summary = recipe.train()
    lora_after, rest_after = lora_and_rest(recipe.model)
    assert summary["optimizer_steps"] == 2 and all(r["loss"] > 0 for r in recipe.last_records)
    assert any(not torch.equal(lora_before[n], lora_after[n]) for n in lora_before)
    assert all(torch.equal(rest_before[n], rest_after[n]) for n in rest_before)
    # scene_visual=last: context scenes average both frames, the target scene is its last frame.
    assert [len(frames) for frames in recipe.samples[0].frames] == [2, 1]


def test_single_tile_trains_at_the_base_grid_and_the_adapter_records_the_mode(storyframes, tmp_path):
    recipe = TrainRecipe(tiny_config(storyframes, tmp_path, "image_mode=single-tile", "epochs=1", "max_steps=1"))
    summary = recipe.setup().train()
    assert summary["optimizer_steps"] == 1 and recipe.last_records[0]["loss"] > 0
    assert [sample.scene_token_counts for sample in recipe.samples] == [[16, 16], [16, 16]]  # (32 / 8) ** 2
    settings = json.loads((tmp_path / "adapter" / "imagechain_train.json").read_text())
    assert settings["image_mode"] == "single-tile" and settings["scene_visual"] == "mean"


class Killed(Exception):
    pass


def test_a_kill_after_epoch_one_resumes_at_epoch_two_with_the_same_optimizer_state(storyframes, tmp_path):
    seen = {}

    def kill_after_first(recipe, epoch):
        seen["optimizer"] = _clone(recipe.optimizer.state_dict())
        seen["scheduler"] = recipe.scheduler.state_dict()
        raise Killed

    with pytest.raises(Killed):
        config = tiny_config(storyframes, tmp_path / "a", "epochs=2")
        TrainRecipe(config, on_epoch_end=kill_after_first).setup().train()
    resumed = TrainRecipe(tiny_config(storyframes, tmp_path / "a", "epochs=2")).setup()
    assert (resumed.epoch, resumed.global_step) == (1, 2)  # epoch index 1: the second epoch is next
    _assert_same(resumed.optimizer.state_dict(), seen["optimizer"])
    assert resumed.scheduler.state_dict()["last_epoch"] == seen["scheduler"]["last_epoch"] == 2
    resumed.train()
    # The resumed run ends exactly where an uninterrupted one does.
    straight = TrainRecipe(tiny_config(storyframes, tmp_path / "b", "epochs=2")).setup()
    straight.train()
    for (name, a), (_, b) in zip(lora_and_rest(resumed.model)[0].items(), lora_and_rest(straight.model)[0].items()):
        assert torch.allclose(a, b, atol=1e-6), name


def test_resume_picks_the_last_finished_epoch_and_checks_the_config(trained, tmp_path):
    out = trained["out"]
    assert latest_checkpoint(out).name == "epoch-5"
    (tmp_path / "checkpoints" / "epoch-3").mkdir(parents=True)  # no state file: cut off mid-save
    (tmp_path / "checkpoints" / "epoch-2.partial").mkdir()
    assert latest_checkpoint(tmp_path) is None
    config = trained["recipe"].config
    changed = load_config(None, [f"{k}={json.dumps(v)}" for k, v in config.to_dict().items() if v is not None]
                          + ["lora_r=4"])
    with pytest.raises(DataError, match="checkpoint was trained with lora_r=8, this run has 4"):
        TrainRecipe(changed).setup()


def _clone(value):
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clone(v) for v in value]
    return value


def _assert_same(got, expected):
    assert got["param_groups"] == expected["param_groups"]
    assert got["state"].keys() == expected["state"].keys() and got["state"]
    for key, state in expected["state"].items():
        for name, value in state.items():
            assert torch.equal(got["state"][key][name], value), (key, name)


def test_ddp_two_cpu_processes_stay_in_sync(storyframes, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(ROOT / "tests/imagechain/train/ddp_worker.py"), str(storyframes), str(tmp_path)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    assert [(r["rank"], r["world"], r["steps"]) for r in ranks] == [(0, 2, 2), (1, 2, 2)]
    assert ranks[0]["final"].keys() == ranks[1]["final"].keys()
    for name, weight in ranks[0]["final"].items():
        assert torch.equal(weight, ranks[1]["final"][name]), f"ranks differ in {name}"
    assert any(not torch.equal(w, ranks[0]["initial"][n]) for n, w in ranks[0]["final"].items())
    assert [r["step"] for r in ranks[0]["records"]] == [1, 2]  # only the main process logs


def test_config_defaults_are_the_papers():
    config = TrainConfig(data=["x"])
    assert (config.lora_r, config.lora_alpha, config.learning_rate, config.lr_scheduler, config.warmup_ratio) == \
        (128, 256, 2e-5, "cosine", 0.03)
    assert (config.per_device_batch_size, config.gradient_accumulation_steps) == (4, 1)
    assert EPOCHS_BY_BUCKET == {"C2-7": 3, "C2": 5, "C3": 5, "C4-7": 7}
    assert [TrainConfig(data=["x"], bucket=b).resolved_epochs() for b in ("C2-7", "C2", "C3", "C4-7")] == [3, 5, 5, 7]
    assert TrainConfig(data=["x"], bucket="C2", epochs=1).resolved_epochs() == 1


@pytest.mark.parametrize("overrides,message", [
    (["lora_rank=4"], "override 'lora_rank=4': unknown field 'lora_rank'"),
    (["lora_r=four"], "override 'lora_r=four': lora_r must be an integer"),
    (["bucket=C9"], "bucket: unknown value 'C9'; known: C2, C3, C4-7, C2-7"),
    (["warmup_ratio=2"], "warmup_ratio: must be in"),
    (["data=[]"], "data: no story source"),
    (["epochs"], "override 'epochs': expected key=value"),
])
def test_config_errors_name_the_field(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        load_config(ROOT / RECIPE, ["data=[somewhere]", *overrides])


def test_recipes_load_and_open_with_their_command():
    recipes = sorted((ROOT / "imagechain/recipes/train").glob("*.yaml"))
    assert len(recipes) == 3
    for path in recipes:
        first = path.read_text().splitlines()[0]
        assert "train --recipe" in first
        assert first.startswith("# ") and f"imagechain/recipes/train/{path.name}" in first
        load_config(path, ["data=[x]"])
    config = load_config(ROOT / "imagechain/recipes/train/llava-v1.6-vicuna-7b.yaml")
    assert (config.model, config.lora_r, config.lora_alpha, config.resolved_epochs()) == \
        ("llava-hf/llava-v1.6-vicuna-7b-hf", 128, 256, 3)
