"""Build a StoryFrames-layout dataset from story annotations and their videos.

Input: StoryBench-shaped annotations (a JSON list of records, or JSON Lines), each with
`video_name`, `question_info`, `sentence_parts`, `start_times`, `end_times` and
`background_description` (optional: `sentence_parts_nocontext`, `caption`,
`num_actors_in_video`), and a folder holding the videos (`<video_name>` or `<video_name>.<ext>`).

Output: the layout `ingoziegler/StoryFrames` uses and `imagechain.data.storyframes` reads:
`OUT/scene_{1,2,3,4_7,8_plus}/{train,val}/` written by `Dataset.save_to_disk`, frames as Image
features (JPEG, quality 95: video frames are lossy already, and PNG copies are about 5x larger).
Frames are picked by `imagechain.data.sampling.plan_frames` and decoded by `imagechain.data.video`.
Splits follow the paper (section 4): 80/20 train/val for 2-7 scenes, by a hash of the story id;
1-scene and 8+-scene stories are validation only.

    report = build_storyframes("story_gen.json", "videos/", "out/StoryFrames")
"""

from __future__ import annotations

import io
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from imagechain.data.buckets import VAL_FRACTION, assign_split
from imagechain.data.sampling import plan_frames
from imagechain.data.storyframes import subset_for
from imagechain.data.video import read_frames
from schemas.errors import DataError

REQUIRED_FIELDS = ("video_name", "question_info", "sentence_parts", "start_times", "end_times",
                   "background_description")
VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")
JPEG_QUALITY = 95
# Rows hold up to ~25 frames each; write every 8 rows so memory stays at a few hundred frames.
WRITER_BATCH_SIZE = 8


@dataclass
class Annotation:
    video_name: str
    """Source video id; the video file is `<video_name>` or `<video_name>.<ext>` in the videos folder."""
    question_info: str
    """StoryBench story id (e.g. `oops_val_1004_0`)."""
    sentence_parts: list[str]
    """One description per scene, in order."""
    start_times: list[float]
    """Scene starts, seconds from the start of the video."""
    end_times: list[float]
    """Scene ends, seconds."""
    background_description: str
    """StoryBench's background text."""
    extra: dict = field(default_factory=dict)
    """Optional fields carried over: sentence_parts_nocontext, caption, num_actors_in_video."""

    @property
    def story_id(self) -> str:
        # StoryFrames ids look like "<video_name>---<question_info>".
        return f"{self.video_name}---{self.question_info}"


@dataclass
class BuildReport:
    stories: dict[str, int] = field(default_factory=dict)
    """"<subset>/<split>" -> stories written."""
    missing_videos: list[str] = field(default_factory=list)
    """video_name of each story skipped because its video was not found (with skip_missing_videos)."""


def read_annotations(path: str | Path) -> list[Annotation]:
    """Annotation records of a JSON list or JSON Lines file; errors name the record and field."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise DataError(f"{path}: cannot read annotations: {err.strerror or err}") from None
    try:
        records = json.loads(text) if text.lstrip().startswith("[") else \
            [json.loads(line) for line in text.splitlines() if line.strip()]
    except ValueError as err:
        raise DataError(f"{path}: not a JSON list or JSON Lines: {err}") from None
    return [_annotation(path, index, record) for index, record in enumerate(records)]


def _annotation(path: Path, index: int, record) -> Annotation:
    where = f"{path}: record {index}"
    if not isinstance(record, dict):
        raise DataError(f"{where} is not an object")
    for name in REQUIRED_FIELDS:
        if name not in record:
            raise DataError(f"{where} is missing field {name!r}")
    counts = {name: len(record[name]) for name in ("sentence_parts", "start_times", "end_times")
              if isinstance(record[name], list)}
    if len(counts) < 3 or len(set(counts.values())) != 1 or not counts["sentence_parts"]:
        raise DataError(f"{where}: sentence_parts, start_times and end_times must be non-empty lists of "
                        f"one length, got {counts}")
    extra = {name: record.get(name) for name in ("sentence_parts_nocontext", "caption", "num_actors_in_video")}
    return Annotation(video_name=str(record["video_name"]), question_info=str(record["question_info"]),
                      sentence_parts=list(record["sentence_parts"]),
                      start_times=[float(t) for t in record["start_times"]],
                      end_times=[float(t) for t in record["end_times"]],
                      background_description=str(record["background_description"]), extra=extra)


def find_video(videos_dir: Path, video_name: str) -> Path | None:
    candidates = [videos_dir / video_name] + [videos_dir / f"{video_name}{ext}" for ext in VIDEO_EXTENSIONS]
    return next((p for p in candidates if p.is_file()), None)


def storyframes_split(annotation: Annotation, val_fraction: float = VAL_FRACTION) -> str:
    scenes = len(annotation.sentence_parts)
    return "val" if scenes == 1 or scenes >= 8 else assign_split(annotation.story_id, val_fraction)


def build_storyframes(annotations: str | Path, videos_dir: str | Path, out_dir: str | Path,
                      val_fraction: float = VAL_FRACTION, skip_missing_videos: bool = False) -> BuildReport:
    """Extract frames for every annotated story and save them in the StoryFrames layout under `out_dir`."""
    videos_dir, out_dir = Path(videos_dir), Path(out_dir)
    if not videos_dir.is_dir():
        raise DataError(f"videos folder not found: {videos_dir}")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise DataError(f"output folder {out_dir} exists and is not empty")
    report, groups = BuildReport(), {}
    for annotation in read_annotations(annotations):
        try:  # fail on bad times before any decoding
            plan_frames(annotation.start_times, annotation.end_times)
        except DataError as err:
            raise DataError(f"{annotations}: story {annotation.story_id!r}: {err}") from None
        video = find_video(videos_dir, annotation.video_name)
        if video is None:
            if not skip_missing_videos:
                raise DataError(f"no video for {annotation.video_name!r} in {videos_dir}")
            report.missing_videos.append(annotation.video_name)
            continue
        key = f"{subset_for(len(annotation.sentence_parts))}/{storyframes_split(annotation, val_fraction)}"
        groups.setdefault(key, []).append((annotation, video))
    for key, items in sorted(groups.items()):
        _save_group(items, out_dir / key)
        report.stories[key] = len(items)
    return report


def _save_group(items: list[tuple[Annotation, Path]], folder: Path) -> None:
    from datasets import Dataset  # here: datasets is slow to import; `imagechain --help` imports this module

    # from_generator writes row batches to Arrow as it goes; a temporary cache keeps a stale
    # build from ever being reused (its cache key is a hash of the arguments, not the videos).
    with tempfile.TemporaryDirectory(prefix="storyframes-") as cache:
        dataset = Dataset.from_generator(_rows, features=features(), cache_dir=cache,
                                         gen_kwargs={"items": items}, writer_batch_size=WRITER_BATCH_SIZE)
        dataset.save_to_disk(str(folder))
        del dataset


def _rows(items: list[tuple[Annotation, Path]]):
    for annotation, video in items:
        times = plan_frames(annotation.start_times, annotation.end_times)
        images = iter(read_frames(video, [t for scene in times for t in scene]))
        scenes = [[_jpeg(next(images)) for _ in scene] for scene in times]
        yield {"story_id": annotation.story_id, "video_name": annotation.video_name,
               "question_info": annotation.question_info, "num_scenes": len(times), "scenes": scenes,
               "subsampled_frames_per_scene": times, "sentence_parts": annotation.sentence_parts,
               "start_times": annotation.start_times, "end_times": annotation.end_times,
               "background_description": annotation.background_description, **annotation.extra}


def _jpeg(image) -> dict:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return {"bytes": buffer.getvalue(), "path": None}


def features():
    """The StoryFrames columns (as in the Hub's scene_*/train/dataset_info.json)."""
    from datasets import Features, Image, List, Value  # here: as in _save_group

    strings, floats = List(Value("string")), List(Value("float32"))
    return Features({
        "story_id": Value("string"), "video_name": Value("string"), "question_info": Value("string"),
        "num_scenes": Value("int32"), "scenes": List(List(Image())),
        "subsampled_frames_per_scene": List(floats), "sentence_parts": strings,
        "sentence_parts_nocontext": strings, "start_times": floats, "end_times": floats,
        "background_description": Value("string"), "caption": Value("string"),
        "num_actors_in_video": Value("int32"),
    })
