"""Synthetic videos through build-storyframes: every extracted frame is the one the sampling rule names.

Each video frame carries its own number (a stripe code). A frame extracted at time t must be frame
floor(t * fps): the frame on screen at t. One story per duration bin, plus a scene shorter than
the 0.2 s offset on each side.
"""

import json
import math

import pytest

from imagechain.data.build_storyframes import build_storyframes, read_annotations
from imagechain.data.sampling import plan_frames
from imagechain.data.storyframes import iter_storyframes
from imagechain.data.video import read_frames
from schemas.errors import DataError
from tests.imagechain.story_fixtures import read_code, write_video

# video name -> (fps, video seconds, scene (start, end) list, expected frames per scene)
STORIES = {
    "bin5": (10, 5.0, [(0.0, 1.5), (1.5, 4.0), (4.0, 4.3)], [2, 4, 2]),       # M = 4.3 -> F = 8
    "bin10": (10, 8.5, [(0.0, 3.0), (3.0, 8.0)], [4, 7]),                    # M = 8 -> F = 12
    "bin15": (25, 12.5, [(0.5, 6.5), (7.0, 12.0)], [8, 6]),                  # M = 11 -> F = 15
    "bin30": (10, 20.5, [(0.0, 10.0), (10.0, 20.0)], [10, 10]),              # M = 20 -> F = 20
    "bin30plus": (10, 33.5, [(0.0, 12.0), (12.0, 24.0), (24.0, 33.0)], [9, 9, 6]),  # M = 33 -> F = 25
}


def frame_at(seconds: float, fps: int) -> int:
    return math.floor(seconds * fps + 1e-6)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    for name, (fps, seconds, _, _) in STORIES.items():
        write_video(folder / f"{name}.mp4", seconds, fps)
    return folder


def annotation(name: str) -> dict:
    scenes = STORIES[name][2]
    return {"video_name": name, "question_info": f"{name}_0", "background_description": "A test pattern.",
            "sentence_parts": [f"{name} part {i + 1}." for i in range(len(scenes))],
            "start_times": [s for s, _ in scenes], "end_times": [e for _, e in scenes]}


def test_read_frames_returns_the_frame_on_screen(videos):
    times = [0.0, 0.05, 0.1, 0.35, 4.15, 4.15, 2.0, 4.99]
    numbers = [read_code(image) for image in read_frames(videos / "bin5.mp4", times)]
    assert numbers == [0, 0, 1, 3, 41, 41, 20, 49]
    with pytest.raises(DataError, match="no frame at 5.300s"):
        read_frames(videos / "bin5.mp4", [5.3])


def test_build_gives_the_predicted_frames_for_every_bin(videos, tmp_path):
    (tmp_path / "ann.json").write_text(json.dumps([annotation(name) for name in STORIES]))
    report = build_storyframes(tmp_path / "ann.json", videos, tmp_path / "out")
    assert sum(report.stories.values()) == len(STORIES)
    assert set(report.stories) <= {"scene_2/train", "scene_2/val", "scene_3/train", "scene_3/val"}
    stories = {s.metadata["video_name"]: s for s in iter_storyframes(tmp_path / "out")}
    assert set(stories) == set(STORIES)
    for name, (fps, _, scenes, expected_counts) in STORIES.items():
        story = stories[name]
        assert story.story_id == f"{name}---{name}_0"
        assert [len(scene.frames) for scene in story.scenes] == expected_counts
        planned = plan_frames([s for s, _ in scenes], [e for _, e in scenes])
        for index, (scene, times) in enumerate(zip(story.scenes, planned)):
            assert story.metadata["subsampled_frames_per_scene"][index] == pytest.approx(times, abs=1e-5)
            assert [read_code(frame) for frame in scene.frames] == [frame_at(t, fps) for t in times], (name, index)
            assert scene.description == f"{name} part {index + 1}."


def test_short_scene_and_offsets_by_frame_number(videos, tmp_path):
    # bin5 at 10 fps: [0, 1.5] -> 0.2, 1.3; [1.5, 4.0] -> 1.7, 2.4, 3.1, 3.8; [4.0, 4.3] -> midpoint 4.15 twice.
    (tmp_path / "ann.jsonl").write_text(json.dumps(annotation("bin5")) + "\n")
    build_storyframes(tmp_path / "ann.jsonl", videos, tmp_path / "out")
    (story,) = iter_storyframes(tmp_path / "out")
    assert [[read_code(f) for f in scene.frames] for scene in story.scenes] == [[2, 13], [17, 24, 31, 38], [41, 41]]


def test_annotation_errors_name_the_record_and_field(tmp_path, videos):
    bad = annotation("bin5")
    del bad["end_times"]
    (tmp_path / "ann.json").write_text(json.dumps([annotation("bin10"), bad]))
    with pytest.raises(DataError, match=r"ann.json: record 1 is missing field 'end_times'"):
        read_annotations(tmp_path / "ann.json")
    (tmp_path / "ann2.json").write_text(json.dumps([annotation("bin5") | {"video_name": "gone"}]))
    with pytest.raises(DataError, match="no video for 'gone'"):
        build_storyframes(tmp_path / "ann2.json", videos, tmp_path / "out2")
    report = build_storyframes(tmp_path / "ann2.json", videos, tmp_path / "out3", skip_missing_videos=True)
    assert report.missing_videos == ["gone"] and report.stories == {}
