"""The story: scenes in order, each a list of frames and one description; the last scene is the target.

Stories come from StoryFrames (`imagechain.data.storyframes`) and from generated runs
(`imagechain.data.run_stories`). A frame is an image file path or a PIL image; StoryFrames frames are
PIL images opened lazily (header only) until a pixel is needed.

A story serialises to the `story` schema (schemas/story.schema.json). The schema holds file names
only, so PIL frames are written out as PNG files first:

    obj = story_to_json(story, frames_dir="out/frames")   # validated against the schema
    story = story_from_json(obj)
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

from PIL import Image

from schemas.errors import DataError
from schemas.schema_check import SchemaViolation, require

Frame = Union[str, Path, Image.Image]


@dataclass
class Scene:
    frames: list[Frame]
    """The scene's frames in time order: file paths or PIL images. At least one."""
    description: str
    """One human (or planner) description of the whole scene."""


@dataclass
class Story:
    story_id: str
    """Unique within its source; StoryFrames' `story_id`, or `<run>/<kind>/<task id>` for a run."""
    source: str
    """`storyframes:<subset>/<split>` or `run:<run name>`, as the story schema documents."""
    scenes: list[Scene]
    """The scenes in order. The last one is what a model must describe."""
    split: str | None = None
    """`train` or `val` where the source says; None for run stories (see `buckets.split_of`)."""
    metadata: dict = field(default_factory=dict)
    """Source fields kept for reference (video name, timestamps, task kind, ...). JSON values only."""

    @property
    def num_scenes(self) -> int:
        return len(self.scenes)


def story_to_json(story: Story, frames_dir: str | Path | None = None) -> dict:
    """The story as a `story`-schema object; PIL frames are saved under `frames_dir` as PNG."""
    scenes = []
    for s, scene in enumerate(story.scenes):
        frames = [_frame_file(story, frame, frames_dir, s, k) for k, frame in enumerate(scene.frames)]
        scenes.append({"frames": frames, "description": scene.description})
    obj = {"story_id": story.story_id, "source": story.source, "split": story.split,
           "scenes": scenes, "metadata": story.metadata}
    _require_story(obj, story.story_id)
    return obj


def story_from_json(obj: dict, file: str = "<story>") -> Story:
    """A `story`-schema object back as a Story; frames stay file paths."""
    _require_story(obj, file)
    scenes = [Scene(frames=list(s["frames"]), description=s["description"]) for s in obj["scenes"]]
    return Story(story_id=obj["story_id"], source=obj["source"], scenes=scenes,
                 split=obj.get("split"), metadata=obj.get("metadata", {}))


def _require_story(obj: dict, where: str) -> None:
    try:
        require("story", obj, file=where)
    except SchemaViolation as err:
        raise DataError(str(err)) from None


def _frame_file(story: Story, frame: Frame, frames_dir, scene: int, index: int) -> str:
    if isinstance(frame, (str, Path)):
        return str(frame)
    if frames_dir is None:
        raise DataError(f"story {story.story_id!r} has in-memory frames: pass frames_dir to write them as files")
    folder = Path(frames_dir) / safe_name(story.story_id)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"scene{scene:02d}_frame{index:02d}.png"
    frame.convert("RGB").save(path)
    return str(path)


def safe_name(story_id: str) -> str:
    """A file name for a story id: its safe characters plus a short hash, so distinct ids never collide."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", story_id)[:80]
    return f"{readable}-{hashlib.sha256(story_id.encode()).hexdigest()[:8]}"


def open_frame(frame: Frame) -> Image.Image:
    """A frame as a PIL RGB image (files are read here; PIL images are converted if needed)."""
    if isinstance(frame, Image.Image):
        return frame if frame.mode == "RGB" else frame.convert("RGB")
    try:
        with Image.open(frame) as image:
            return image.convert("RGB")
    except OSError as err:
        raise DataError(f"{frame}: cannot read image: {err}") from None


def frame_size(frame: Frame) -> tuple[int, int]:
    """(width, height) without decoding pixels: PIL reads only the header."""
    if isinstance(frame, Image.Image):
        return frame.size
    try:
        with Image.open(frame) as image:
            return image.size
    except OSError as err:
        raise DataError(f"{frame}: cannot read image: {err}") from None
