"""`imagechain train` through the typer app: bad input is one line and exit code 2, before any weights load.

The training itself is tested in tests/imagechain/train/test_train.py.
"""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.imagechain.story_fixtures import save_storyframes, storyframes_row
from vischain.imagechain_cli import app

RECIPE = "imagechain/recipes/train/tiny-llava.yaml"
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def storyframes(tmp_path_factory, tiny_models):
    """Four 2-scene training stories, nothing else (no C3 stories)."""
    rows = [storyframes_row(f"v2---s{i}", [f"Story {i} begins with a walk.", f"Then story {i} ends in a jump."])
            for i in range(4)]
    return save_storyframes(tmp_path_factory.mktemp("sf"), {"scene_2/train": rows})


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, storyframes):
    runner = CliRunner()
    result = runner.invoke(app, ["train", "--recipe", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: --recipe: {tmp_path / 'nope.yaml'}: file not found"
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: tiny:llava-next\nlora_rank: 3\n")
    result = runner.invoke(app, ["train", "--recipe", str(bad)])
    assert result.exit_code == 2 and result.output.startswith(f"error: {bad}: unknown field 'lora_rank'")
    result = runner.invoke(app, ["train", "--recipe", str(ROOT / RECIPE), f"data=[{storyframes}]", "bucket=C3",
                                 f"output_dir={tmp_path / 'o'}"])
    assert result.exit_code == 2 and result.output.startswith("error: ") and "scene_3" in result.output
    assert len(result.output.strip().splitlines()) == 1  # the data is read before any model weights
