"""Quiet `imagechain` output: training with checkpointing and a merge, then evaluating its adapter, prints our lines
only: no library warnings and no library progress bars between them; `--verbose` shows the warnings again."""

import re
import warnings
from pathlib import Path

import pytest
from transformers.utils import logging as hf_logging
from typer.testing import CliRunner

from tests.imagechain.story_fixtures import save_storyframes, storyframes_row
from vischain.imagechain_cli import app

ROOT = Path(__file__).resolve().parents[3]
LIBRARY_NOISE = re.compile(r"Warning\b|site-packages|deprecat|Loading weights|Writing model shards|it/s\]",
                           re.IGNORECASE)


@pytest.fixture(scope="module")
def storyframes(tmp_path_factory):
    rows = [storyframes_row(f"v2---q{i}", [f"Story {i} starts.", f"Story {i} ends."]) for i in range(2)]
    return save_storyframes(tmp_path_factory.mktemp("sf"), {"scene_2/train": rows, "scene_2/val": rows[:1]})


def run_quietly(*args: str) -> tuple[str, list[str]]:
    """Run `imagechain ARGS` with every warning shown and transformers' bars on, as in a fresh process."""
    hf_logging.enable_progress_bar()  # an earlier test may have turned them off for this whole process
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output, [f"{w.category.__name__}: {w.message}" for w in caught]


def test_train_and_eval_print_no_library_noise(tiny_models, storyframes, tmp_path):
    out = tmp_path / "runs" / "imagechain-train" / "q"
    output, caught = run_quietly("train", "--recipe", str(ROOT / "imagechain/recipes/train/tiny-llava.yaml"),
                                 f"data=[{storyframes}]", f"output_dir={out}", "epochs=1", "limit=1",
                                 "gradient_checkpointing=true", "merge=true")
    recipe = tmp_path / "eval.yaml"
    recipe.write_text(f"name: q\nsource: {storyframes}\nmodel: tiny:llava-next\nlimit: 1\nout: {tmp_path / 'e'}\n"
                      f"variants: {{ImageChain: {{adapter: {out / 'adapter'}}}}}\n"
                      "generation: {max_new_tokens: 2}\njudge: none\n")
    eval_output, eval_caught = run_quietly("eval", "--recipe", str(recipe))
    assert caught + eval_caught == []
    assert [line for line in (output + eval_output).splitlines() if LIBRARY_NOISE.search(line)] == []
    assert f"adapter: {out / 'adapter'}" in output and "| ImageChain |" in eval_output

    _, verbose = run_quietly("--verbose", "train", "--recipe", str(ROOT / "imagechain/recipes/train/tiny-llava.yaml"),
                             f"data=[{storyframes}]", f"output_dir={tmp_path / 'v'}", "epochs=1", "limit=1")
    assert any("is_gradient_checkpointing" in w for w in verbose)   # the filtered message is real, and shows
