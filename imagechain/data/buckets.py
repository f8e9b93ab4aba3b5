"""Context-length buckets (by number of scenes) and deterministic train/val splits.

A story of n scenes gives one sample: n - 1 scenes of context and the n-th as the target. The
paper (section 5.2, Tables 1-2) trains on C2, C3, C4-7 and C2-7 and evaluates on C2, C3, C4, C5,
C6, C4-6 and C2-6. A bucket "Ca-b" holds stories of a..b scenes, both ends included.

Splits: StoryFrames rows carry their own (`train`/`val` folders). Stories without one (generated
runs) get a split from a hash of their id: stable across runs, machines and Python versions (no
`hash()`, which is salted per process), and a story never moves when others are added.

    stories = select(iter_stories(src), bucket="C2-7", split="train")
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

from imagechain.data.story import Story
from schemas.errors import DataError

TRAIN_BUCKETS: dict[str, tuple[int, int]] = {"C2": (2, 2), "C3": (3, 3), "C4-7": (4, 7), "C2-7": (2, 7)}
EVAL_BUCKETS: dict[str, tuple[int, int]] = {"C2": (2, 2), "C3": (3, 3), "C4": (4, 4), "C5": (5, 5),
                                             "C6": (6, 6), "C4-6": (4, 6), "C2-6": (2, 6)}
BUCKETS: dict[str, tuple[int, int]] = {**TRAIN_BUCKETS, **EVAL_BUCKETS}
SPLITS = ("train", "val")
# The paper keeps an 80-20 train-validation split for stories of 2 to 7 scenes (section 4).
VAL_FRACTION = 0.2


def bucket_range(name: str) -> tuple[int, int]:
    """(fewest, most) scenes of bucket `name`, e.g. "C4-7" -> (4, 7)."""
    if name not in BUCKETS:
        raise DataError(f"unknown bucket {name!r}; known: {', '.join(BUCKETS)}")
    return BUCKETS[name]


def assign_split(story_id: str, val_fraction: float = VAL_FRACTION) -> str:
    """`val` for a stable `val_fraction` of ids, `train` for the rest (SHA-256 of the id)."""
    point = int.from_bytes(hashlib.sha256(story_id.encode()).digest()[:8], "big") / 2**64
    return "val" if point < val_fraction else "train"


def split_of(story: Story) -> str:
    """The story's own split where its source has one, else the hashed one."""
    if story.split in ("val", "validation"):
        return "val"
    return story.split or assign_split(story.story_id)


def select(stories: Iterable[Story], bucket: str | None = None, split: str | None = None) -> Iterator[Story]:
    """The stories of `bucket` and `split` (None: any), lazily and in input order."""
    low, high = bucket_range(bucket) if bucket else (1, 10**9)  # fail on a bad name before any read
    if split is not None and split not in SPLITS:
        raise DataError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    for story in stories:
        if low <= story.num_scenes <= high and (split is None or split_of(story) == split):
            yield story
