"""Adaptive frame sampling for new videos: which timestamps become a scene's frames.

The ImageChain paper (section 4) states the rule in words; no code was published, so the open
points are decided here and stated once:

1. Frame budget F from the story duration M (bins closed on the right):
       M <= 5 s -> 8,  5 < M <= 10 -> 12,  10 < M <= 15 -> 15,  15 < M <= 30 -> 20,  M > 30 -> 25.
2. M is the sum of the scene durations (end - start), not the video length: gaps between scenes
   and the video's unannotated head and tail take no budget.
3. Frames per scene: K_s = max(2, floor(m_s / M * F)). Because of the max, sum(K_s) may exceed F
   (a story of six 0.5 s scenes gets 6 x 2 = 12 frames, not 8).
4. The 0.2 s offset keeps adjacent scenes from sharing a boundary frame: scene s is sampled inside
   [start_s + 0.2, end_s - 0.2], K_s times, spaced uniformly with both ends included. A scene
   shorter than 0.4 s has an empty window: all K_s samples sit at its midpoint (the same frame
   K_s times, so the scene still has K_s frames and its averaged visual is that frame).

    plan_frames([0.0, 2.0], [2.0, 6.0])   # 6 s -> F = 12; K = [4, 8]
    -> [[0.2, 0.733, 1.267, 1.8], [2.2, 2.714, ..., 5.8]]
"""

from __future__ import annotations

import math

from schemas.errors import DataError

# (upper edge in seconds, inclusive) -> total frame budget F; the last bin is open-ended.
BUDGET_BINS: tuple[tuple[float, int], ...] = ((5.0, 8), (10.0, 12), (15.0, 15), (30.0, 20), (math.inf, 25))
SCENE_OFFSET_S = 0.2
MIN_FRAMES_PER_SCENE = 2
# m_s / M * F is computed in floating point; 3.0 can come out as 2.9999999999999996. Flooring
# after adding 1e-9 keeps exact multiples exact without moving any real boundary.
_FLOOR_EPS = 1e-9


def frame_budget(total_seconds: float) -> int:
    """F for a story whose scenes last `total_seconds` in all (bins closed on the right)."""
    for upper, frames in BUDGET_BINS:
        if total_seconds <= upper:
            return frames
    raise AssertionError("the last bin is unbounded")


def frames_per_scene(durations: list[float]) -> list[int]:
    """K_s = max(2, floor(m_s / M * F)) for each scene duration m_s, with M = sum(durations)."""
    total = sum(durations)
    if total <= 0:
        raise DataError(f"scene durations {durations} add up to {total}s; a story needs a positive duration")
    budget = frame_budget(total)
    return [max(MIN_FRAMES_PER_SCENE, math.floor(m / total * budget + _FLOOR_EPS)) for m in durations]


def sample_times(start: float, end: float, count: int) -> list[float]:
    """`count` times spaced uniformly over [start + 0.2, end - 0.2]; the midpoint if that is empty."""
    low, high = start + SCENE_OFFSET_S, end - SCENE_OFFSET_S
    if high <= low:
        return [(start + end) / 2] * count
    step = (high - low) / (count - 1)
    return [low + i * step for i in range(count)]


def plan_frames(start_times: list[float], end_times: list[float]) -> list[list[float]]:
    """Per scene, the timestamps (seconds) of the frames to extract. Pure: no video needed."""
    if len(start_times) != len(end_times) or not start_times:
        raise DataError(f"start_times ({len(start_times)}) and end_times ({len(end_times)}) "
                        "must be non-empty and of equal length")
    for index, (start, end) in enumerate(zip(start_times, end_times)):
        if end < start or start < 0:
            raise DataError(f"scene {index}: start {start}s, end {end}s is not an interval")
    counts = frames_per_scene([end - start for start, end in zip(start_times, end_times)])
    return [sample_times(start, end, k) for start, end, k in zip(start_times, end_times, counts)]
