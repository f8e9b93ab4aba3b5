"""One entry point for stories: a run folder, a StoryFrames folder, or a StoryFrames hub id.

    for story in iter_stories("runs/eng", bucket="C2-7", split="train"): ...
    for story in iter_stories("ingoziegler/StoryFrames", bucket="C3", split="val"): ...

With a bucket, only the StoryFrames subset folders that can hold it are read (C3 reads scene_3
only), and every story is still filtered on its scene count, not on the folder it came from.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from imagechain.data.buckets import SPLITS, bucket_range, select
from imagechain.data.run_stories import is_run_folder, iter_run_stories
from imagechain.data.story import Story
from imagechain.data.storyframes import SUBSETS, iter_storyframes, subsets_for_range


def iter_stories(source: str | Path, bucket: str | None = None, split: str | None = None) -> Iterator[Story]:
    """Stories of `source`, optionally only those of one bucket and split (see imagechain.data.buckets)."""
    if is_run_folder(source):
        stories = iter_run_stories(source)
    else:
        subsets = subsets_for_range(*bucket_range(bucket)) if bucket else SUBSETS
        stories = iter_storyframes(source, subsets=subsets, splits=[split] if split else SPLITS)
    return select(stories, bucket, split)
