"""StoryFrames stories, streamed from a local folder or the Hub (`ingoziegler/StoryFrames`).

The dataset is stored in the `Dataset.save_to_disk` layout, one folder per scene-count subset
and split (`scene_2/train/data-00000-of-00022.arrow`, ...). Both a local copy and the Hub id
are read the same way: `load_dataset(source, data_files=..., streaming=True)` with the Arrow
builder, which reads record batch by record batch, so a 10 GB split never has to fit in memory.
Frames are not decoded here: each is a PIL image opened lazily from its bytes (header only).

    for story in iter_storyframes("data/StoryFrames", subsets=["scene_2"], splits=["val"]):
        story.scenes[0].frames[0].size
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from pathlib import Path

from PIL import Image

from imagechain.data.story import Scene, Story
from schemas.errors import DataError

HUB_ID = "ingoziegler/StoryFrames"
SUBSETS = ("scene_1", "scene_2", "scene_3", "scene_4_7", "scene_8_plus")
SPLITS = ("train", "val")
# Every row needs these; the other StoryFrames fields are kept in story.metadata when present.
REQUIRED_FIELDS = ("story_id", "scenes", "sentence_parts")
METADATA_FIELDS = ("video_name", "question_info", "num_scenes", "subsampled_frames_per_scene",
                   "sentence_parts_nocontext", "start_times", "end_times", "background_description",
                   "caption", "num_actors_in_video")


def subset_for(num_scenes: int) -> str:
    """The subset folder of a story with `num_scenes` scenes."""
    if num_scenes < 1:
        raise DataError(f"a story needs at least one scene, got {num_scenes}")
    if num_scenes <= 3:
        return f"scene_{num_scenes}"
    return "scene_4_7" if num_scenes <= 7 else "scene_8_plus"


def subsets_for_range(low: int, high: int) -> list[str]:
    """The subset folders that can hold stories of `low`..`high` scenes."""
    return sorted({subset_for(n) for n in range(low, min(high, 8) + 1)}, key=SUBSETS.index)


def iter_storyframes(source: str | Path, subsets: Iterable[str] = SUBSETS,
                     splits: Iterable[str] = SPLITS) -> Iterator[Story]:
    """Stories of the given subsets and splits, in file order. `source`: a local folder or a hub id."""
    source, subsets, splits = str(source), tuple(subsets), tuple(splits)
    _check_local_folder(source)
    found_any = False
    for subset in subsets:
        if subset not in SUBSETS:
            raise DataError(f"unknown StoryFrames subset {subset!r}; known: {', '.join(SUBSETS)}")
        for split in splits:
            dataset = open_split(source, subset, split)
            if dataset is None:
                continue
            found_any = True
            where = f"{source}/{subset}/{split}"
            for row in dataset:
                yield row_to_story(row, f"storyframes:{subset}/{split}", split, where)
    if not found_any:
        raise DataError(f"{source}: no StoryFrames data for subsets {list(subsets)} and splits {list(splits)} "
                        "(expected folders like scene_2/train with .arrow files)")


def _check_local_folder(source: str) -> None:
    looks_local = source.startswith((".", "/", "~")) or Path(source).exists()
    if looks_local and not Path(source).expanduser().is_dir():
        raise DataError(f"StoryFrames folder not found: {source}")


def open_split(source: str, subset: str, split: str):
    """The streamed rows of one subset and split, frames undecoded; None when the source has none."""
    # here: datasets is slow to import, and run folders, `imagechain --help` and flag checks do without it
    from datasets import Image as ImageFeature
    from datasets import List, load_dataset
    from datasets.exceptions import DataFilesNotFoundError

    try:
        dataset = load_dataset(str(Path(source).expanduser()) if Path(source).expanduser().is_dir() else source,
                               data_files={split: f"{subset}/{split}/*.arrow"}, split=split, streaming=True)
    except DataFilesNotFoundError:
        return None
    except (OSError, ValueError) as err:  # hub unreachable, bad id, unreadable files
        raise DataError(f"{source}: cannot open {subset}/{split}: {str(err).splitlines()[0]}") from None
    missing = [name for name in REQUIRED_FIELDS if name not in (dataset.features or {})]
    if missing:
        raise DataError(f"{source}/{subset}/{split}: missing field(s) {', '.join(missing)}")
    # Undecoded frames ({bytes, path}): decoding every frame of a 10 GB split just to count them
    # would dominate `data stats`; _lazy_image opens them on demand instead.
    return dataset.cast_column("scenes", List(List(ImageFeature(decode=False))))


def row_to_story(row: dict, source: str, split: str, where: str) -> Story:
    """One StoryFrames row as a Story; `where` names the data in errors."""
    story_id = row["story_id"]
    scenes, parts = row["scenes"], row["sentence_parts"]
    if len(scenes) != len(parts) or not scenes:
        raise DataError(f"{where}: story {story_id!r} has {len(scenes)} scenes but {len(parts)} sentence_parts")
    if any(not frames for frames in scenes):
        raise DataError(f"{where}: story {story_id!r} has a scene without frames")
    story_scenes = [Scene(frames=[_lazy_image(f) for f in frames], description=text)
                    for frames, text in zip(scenes, parts)]
    metadata = {name: row[name] for name in METADATA_FIELDS if name in row}
    return Story(story_id=story_id, source=source, scenes=story_scenes, split=split, metadata=metadata)


def _lazy_image(value: dict) -> Image.Image:
    # PIL reads only the header here; pixels are decoded on first use (size needs none).
    if value.get("bytes"):
        return Image.open(io.BytesIO(value["bytes"]))
    return Image.open(value["path"])
