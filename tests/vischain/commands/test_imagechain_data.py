"""`imagechain data stats`, `imagechain data build-storyframes` and `imagechain data demo` through the typer app."""

import json

import pytest
from typer.testing import CliRunner

from tests.imagechain.story_fixtures import write_run_dir, write_storyframes_dir, write_video
from vischain.imagechain_cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def storyframes_dir(tmp_path_factory):
    return write_storyframes_dir(tmp_path_factory.mktemp("StoryFrames"))


@pytest.fixture
def run_dir(tmp_path):
    return write_run_dir(tmp_path)


def test_stats_counts_buckets_frames_and_tokens(storyframes_dir, tiny_models):
    result = runner.invoke(app, ["data", "stats", str(storyframes_dir), "--model", str(tiny_models["llava-next"])])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    first_table = lines[:next(i for i, line in enumerate(lines) if "frames per scene" in line)]
    row = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]] for line in first_table
           if line.startswith("│")}
    assert row["C2-7"][:3] == ["2-7", "5", "2"]           # scenes, train, val
    assert row["C4-7"][:3] == ["4-7", "2", "0"] and row["other"][:3] == ["1, 8+", "0", "2"]
    assert "frames per scene" in result.output and "token lengths under" in result.output
    train_frames = next(line for line in lines if line.startswith("│ train ") and line.count("│") == 6)
    # 2+2+3+4+6 scenes, 2 frames each
    assert [c.strip() for c in train_frames.split("│")[2:-1]] == ["17", "2", "2", "2"]


def test_stats_token_lengths_in_single_tile_mode(storyframes_dir, tiny_models):
    def c2_val_length(*flags):
        result = runner.invoke(app, ["data", "stats", str(storyframes_dir), "--model", "tiny:llava-next",
                                     "--bucket", "C2", *flags])
        assert result.exit_code == 0, result.output
        row = next(line for line in result.output.splitlines() if line.startswith("│ C2 ") and "│ val " in line)
        return int(row.split("│")[4])

    # One 2-scene story: each of its 2 frames costs 70 tokens natively, 16 as a single tile.
    assert c2_val_length() - c2_val_length("--image-mode", "single-tile") == 2 * (70 - 16)
    result = runner.invoke(app, ["data", "stats", str(storyframes_dir), "--model", "tiny:qwen2-vl",
                                 "--image-mode", "single-tile", "--limit", "1"])
    assert result.exit_code == 2 and "image_mode single-tile is for LLaVA-NeXT models" in result.output


def test_stats_of_a_run_folder(run_dir):
    result = runner.invoke(app, ["data", "stats", str(run_dir), "--bucket", "C3"])
    assert result.exit_code == 0, result.output
    c3 = next(line for line in result.output.splitlines() if line.startswith("│ C3 "))
    assert sum(int(c) for c in c3.split("│")[3:5]) == 2       # the 3-step ITMR task and the IOMR task


def test_build_storyframes_command(tmp_path):
    write_video(tmp_path / "clip.mp4", 4.0, 10)
    ann = {"video_name": "clip", "question_info": "clip_0", "background_description": "", "sentence_parts": ["a", "b"],
           "start_times": [0.0, 2.0], "end_times": [2.0, 4.0]}
    (tmp_path / "ann.json").write_text(json.dumps([ann]))
    result = runner.invoke(app, ["data", "build-storyframes", str(tmp_path / "ann.json"), str(tmp_path),
                                 str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "scene_2/" in result.output and "1 stories" in result.output
    stats = runner.invoke(app, ["data", "stats", str(tmp_path / "out")])
    assert stats.exit_code == 0 and "│ C2 " in stats.output


def test_bad_input_is_one_line_with_exit_2(storyframes_dir, tmp_path):
    del_field = {"video_name": "clip", "question_info": "q", "background_description": "", "sentence_parts": ["a"],
                 "start_times": [0.0]}
    (tmp_path / "ann.json").write_text(json.dumps([del_field]))
    cases = {
        ("stats", str(tmp_path / "missing")): "StoryFrames folder not found",
        ("stats", str(storyframes_dir), "--bucket", "C9"): "--bucket: unknown bucket 'C9'",
        ("stats", str(storyframes_dir), "--variant", "GPT"): "--variant: unknown variant 'GPT'",
        ("stats", str(storyframes_dir), "--model", str(tmp_path)): "--model: cannot load",
        ("build-storyframes", str(tmp_path / "ann.json"), str(tmp_path), str(tmp_path / "o")):
            "record 0 is missing field 'end_times'",
        ("build-storyframes", str(tmp_path / "none.json"), str(tmp_path), str(tmp_path / "o")):
            "annotations file not found",
        ("build-storyframes", str(tmp_path / "ann.json"), str(tmp_path / "novideos"), str(tmp_path / "o")):
            "videos folder not found",
    }
    for args, message in cases.items():
        result = runner.invoke(app, ["data", *args])
        assert result.exit_code == 2, (args, result.output)
        assert "error: " in result.output and message in result.output, (args, result.output)
        assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_demo_writes_a_storyframes_layout_that_stats_reads(tmp_path):
    result = runner.invoke(app, ["data", "demo", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"demo StoryFrames written to {tmp_path / 'demo'}"
    assert {p.name for p in (tmp_path / "demo").iterdir()} == {"scene_2", "scene_3", "scene_4_7"}
    stats = runner.invoke(app, ["data", "stats", str(tmp_path / "demo")])
    assert stats.exit_code == 0, stats.output
    c2_7 = next(line for line in stats.output.splitlines() if line.startswith("│ C2-7 "))
    assert [c.strip() for c in c2_7.split("│")[2:5]] == ["2-7", "7", "7"]   # LAYOUT: 3+2+2 train, 2+2+3 val
