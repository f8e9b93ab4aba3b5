"""Stories from a StoryFrames-shaped folder (the hub id's code path) and from a run folder; buckets; JSON."""

import json

import pytest
from datasets import Features, Value
from PIL import Image

from imagechain.data.buckets import EVAL_BUCKETS, TRAIN_BUCKETS, assign_split, select, split_of
from imagechain.data.run_stories import iter_run_stories
from imagechain.data.sources import iter_stories
from imagechain.data.story import story_from_json, story_to_json
from imagechain.data.storyframes import iter_storyframes
from schemas.errors import DataError
from tests.imagechain.story_fixtures import STORYFRAMES_LAYOUT, save_storyframes, storyframes_row, write_json


def test_storyframes_folder_streams_every_subset_and_split(storyframes_dir):
    stories = list(iter_storyframes(storyframes_dir))
    expected = [(sid, n, folder) for folder, rows in STORYFRAMES_LAYOUT.items() for sid, n in rows]
    assert [(s.story_id, s.num_scenes, s.source.removeprefix("storyframes:")) for s in stories] == expected
    story = next(s for s in stories if s.story_id == "v3---three_0")
    assert story.split == "train" and story.scenes[2].description == "v3---three_0 scene 3."
    frame = story.scenes[1].frames[1]
    assert isinstance(frame, Image.Image) and frame.size == (64, 48)
    assert frame.convert("RGB").getpixel((0, 0)) == (21, 80, 160)   # scene 2, frame 2: shade 20 * 1 + 1
    assert story.metadata["start_times"] == [0.0, 1.0, 2.0] and story.metadata["num_actors_in_video"] == 1


def test_buckets_select_by_scene_count_and_split(storyframes_dir):
    def ids(bucket, split):
        return [s.story_id for s in iter_stories(storyframes_dir, bucket=bucket, split=split)]

    assert ids("C2", "train") == ["v2---two_0", "v2---two_1"]
    assert ids("C3", "val") == ["v3---three_1"]
    assert ids("C4-7", "train") == ["v4---four_0", "v6---six_0"]
    assert ids("C2-7", "train") == ["v2---two_0", "v2---two_1", "v3---three_0", "v4---four_0", "v6---six_0"]
    assert ids("C6", "train") == ["v6---six_0"] and ids("C2-6", "val") == ["v2---two_2", "v3---three_1"]
    assert list(TRAIN_BUCKETS) == ["C2", "C3", "C4-7", "C2-7"]
    assert list(EVAL_BUCKETS) == ["C2", "C3", "C4", "C5", "C6", "C4-6", "C2-6"]
    with pytest.raises(DataError, match="unknown bucket 'C9'"):
        ids("C9", None)


def test_hashed_splits_are_deterministic_and_about_80_20():
    splits = [assign_split(f"story-{i}") for i in range(2000)]
    assert splits == [assign_split(f"story-{i}") for i in range(2000)]
    assert 0.17 < splits.count("val") / 2000 < 0.23
    assert [assign_split(f"story-{i}") for i in (0, 1, 9)] == ["val", "train", "val"]   # pinned: never moves


def test_storyframes_errors_name_the_folder_or_field(storyframes_dir, tmp_path):
    with pytest.raises(DataError, match="StoryFrames folder not found"):
        next(iter_storyframes(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no StoryFrames data"):
        next(iter_storyframes(tmp_path / "empty"))
    row = {"story_id": "x", "caption": "no scenes here"}
    save_storyframes(tmp_path / "bad", {"scene_2/train": [row]},
                     Features({"story_id": Value("string"), "caption": Value("string")}))
    with pytest.raises(DataError, match=r"bad/scene_2/train: missing field\(s\) scenes, sentence_parts"):
        next(iter_storyframes(tmp_path / "bad"))
    broken = storyframes_row("v---broken", ["only one description"]) | {"scenes": [[], []]}
    save_storyframes(tmp_path / "broken", {"scene_2/val": [broken]})
    with pytest.raises(DataError, match="'v---broken' has 2 scenes but 1 sentence_parts"):
        next(iter_storyframes(tmp_path / "broken"))


def test_run_folder_gives_itmr_and_iomr_stories(run_dir):
    stories = {s.story_id: s for s in iter_run_stories(run_dir)}
    assert list(stories) == ["eng/itmr/0001", "eng/itmr/0002", "eng/iomr/0003"]
    itmr = stories["eng/itmr/0001"]
    assert [s.frames[0].rsplit("/", 1)[-1] for s in itmr.scenes] == ["q1_2.png", "q2_1.png", "q3_3.png"]
    assert [s.description for s in itmr.scenes] == ["0001: step 1 done.", "0001: step 2 done.", "0001: step 3 done."]
    assert itmr.source == "run:eng" and itmr.split is None and split_of(itmr) in ("train", "val")
    iomr = stories["eng/iomr/0003"]
    assert [s.frames[0].rsplit("/", 1)[-1] for s in iomr.scenes] == ["start.png", "s1B.png", "s2C.png"]
    assert [s.description for s in iomr.scenes] == ["A closed gearbox.", "The cover is off.", "The gear is replaced."]
    assert [s.story_id for s in iter_stories(run_dir, bucket="C2")] == ["eng/itmr/0002"]
    assert [s.story_id for s in select(stories.values(), "C3")] == ["eng/itmr/0001", "eng/iomr/0003"]


def test_run_errors_name_the_file(run_dir):
    plan_path = run_dir / "tasks" / "itmr" / "0002" / "plan.json"
    plan = json.loads(plan_path.read_text())
    write_json(plan_path, plan | {"steps": plan["steps"] * 2})
    with pytest.raises(DataError, match=r"0002/plan.json: 4 steps, but task.json has 2 questions"):
        list(iter_run_stories(run_dir))
    plan_path.unlink()
    with pytest.raises(DataError, match=r"0002/plan.json: file not found"):
        list(iter_run_stories(run_dir))
    with pytest.raises(DataError, match="not a run folder"):
        list(iter_run_stories(run_dir / "tasks"))


def test_stories_serialise_to_the_story_schema(run_dir, storyframes_dir, tmp_path):
    run_story = next(iter_run_stories(run_dir))
    assert story_from_json(story_to_json(run_story)) == run_story
    frames_story = next(iter_storyframes(storyframes_dir, subsets=["scene_2"], splits=["train"]))
    with pytest.raises(DataError, match="in-memory frames"):
        story_to_json(frames_story)
    obj = story_to_json(frames_story, frames_dir=tmp_path / "frames")
    assert obj["source"] == "storyframes:scene_2/train" and obj["split"] == "train"
    first = obj["scenes"][0]["frames"][0]
    assert Image.open(first).size == (64, 48)
    with pytest.raises(DataError, match="story.*scenes"):
        story_from_json(obj | {"scenes": []})
