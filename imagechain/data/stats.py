"""Counts over a story source: stories per bucket and split, frames per scene, token lengths.

Stories are read once, in a stream; only per-story numbers are kept, so a 10 GB StoryFrames split
costs its decode time, not its size in memory. Token lengths need a processor and decode one frame
per scene (see imagechain.data.render).

    stats = collect_stats(iter_stories("data/StoryFrames"), processor=proc, max_length=4096)
    stats.bucket_counts("C2-7", "train")
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from imagechain.data.buckets import bucket_range, split_of
from imagechain.data.conversation import build_conversation
from imagechain.data.render import StoryTooLong, tokenize
from imagechain.data.story import Story
from schemas.errors import DataError


@dataclass
class DataStats:
    stories: Counter = field(default_factory=Counter)
    """(num_scenes, split) -> stories."""
    frames_per_scene: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    """split -> frame count of every scene read."""
    token_lengths: dict[tuple[int, str], list[int]] = field(default_factory=lambda: defaultdict(list))
    """(num_scenes, split) -> tokens of each story that fits (with a processor only)."""
    too_long: Counter = field(default_factory=Counter)
    """(num_scenes, split) -> stories over max_length: counted, never truncated."""

    def bucket_counts(self, bucket: str, split: str) -> int:
        low, high = bucket_range(bucket)
        return sum(n for (scenes, s), n in self.stories.items() if s == split and low <= scenes <= high)

    def bucket_lengths(self, bucket: str, split: str) -> tuple[list[int], int]:
        """(token lengths of the stories that fit, stories over max_length) for one bucket and split."""
        low, high = bucket_range(bucket)
        lengths = [x for (scenes, s), xs in self.token_lengths.items() if s == split and low <= scenes <= high
                   for x in xs]
        over = sum(n for (scenes, s), n in self.too_long.items() if s == split and low <= scenes <= high)
        return lengths, over

    def other_counts(self, split: str) -> int:
        """Stories outside every bucket: 1 scene, or 8 and more."""
        return sum(n for (scenes, s), n in self.stories.items() if s == split and not 2 <= scenes <= 7)


def collect_stats(stories: Iterable[Story], processor=None, max_length: int | None = None,
                  variant: str = "ImageChain", form: str = "chat", limit: int | None = None,
                  image_mode: str = "native") -> DataStats:
    """Read up to `limit` stories; with a processor, tokenise each as a `variant` conversation."""
    if variant == "MLLM-ICL":
        raise DataError("--variant MLLM-ICL needs a demonstration pool; token lengths are not counted for it")
    stats = DataStats()
    for count, story in enumerate(stories):
        if limit is not None and count >= limit:
            break
        key = (story.num_scenes, split_of(story))
        stats.stories[key] += 1
        stats.frames_per_scene[key[1]] += [len(scene.frames) for scene in story.scenes]
        if processor is not None:
            try:
                tokenized = tokenize(build_conversation(story, variant), processor, max_length, form,
                                     image_mode=image_mode)
                stats.token_lengths[key].append(tokenized.length)
            except StoryTooLong:
                stats.too_long[key] += 1
    return stats


def summary(values: list[int]) -> tuple[int, float, int] | None:
    """(min, median, max) of `values`, None when empty."""
    return (min(values), statistics.median(values), max(values)) if values else None
