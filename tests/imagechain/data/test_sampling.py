"""The frame-sampling rule as a pure function: budgets per duration bin, K_s, the 0.2 s offset."""

import math

import pytest

from imagechain.data.sampling import frame_budget, frames_per_scene, plan_frames, sample_times
from schemas.errors import DataError


@pytest.mark.parametrize("seconds, budget", [
    (0.5, 8), (5.0, 8), (5.01, 12), (10.0, 12), (10.5, 15), (15.0, 15), (15.2, 20), (30.0, 20), (30.01, 25),
    (400.0, 25),
])
def test_budget_bins_are_closed_on_the_right(seconds, budget):
    assert frame_budget(seconds) == budget


def test_frames_per_scene_is_proportional_with_a_floor_of_two():
    assert frames_per_scene([2.0, 4.0]) == [4, 8]                 # M = 6 -> F = 12
    assert frames_per_scene([1.5, 2.5, 0.3]) == [2, 4, 2]         # M = 4.3 -> F = 8; 2.79, 4.65, 0.56
    assert frames_per_scene([0.5] * 6) == [2] * 6                 # sum 12 exceeds F = 8: the max(2, .) floor
    assert frames_per_scene([10.0, 10.0, 10.0]) == [6, 6, 6]      # M = 30 (closed bin) -> F = 20; 6.67


def test_total_duration_is_the_sum_of_scenes_not_the_video_span():
    # Scenes [0, 3] and [6, 8] last 5 s in all (F = 8), although the story spans 8 s (which would give 12).
    assert [len(s) for s in plan_frames([0.0, 6.0], [3.0, 8.0])] == [4, 3]   # floor(3/5*8)=4, floor(2/5*8)=3


def test_samples_are_uniform_inside_the_offset_window():
    times = plan_frames([0.0, 2.0], [2.0, 6.0])
    assert times[0] == pytest.approx([0.2, 0.2 + 1.6 / 3, 0.2 + 3.2 / 3, 1.8])
    assert times[1][0] == pytest.approx(2.2) and times[1][-1] == pytest.approx(5.8)
    steps = [b - a for a, b in zip(times[1], times[1][1:])]
    assert all(math.isclose(step, 3.6 / 7) for step in steps)


def test_a_scene_shorter_than_twice_the_offset_is_sampled_at_its_midpoint():
    assert sample_times(4.0, 4.3, 2) == pytest.approx([4.15, 4.15])
    assert sample_times(1.0, 1.4, 3) == pytest.approx([1.2, 1.2, 1.2])   # exactly 0.4 s: an empty window


def test_bad_times_are_errors():
    with pytest.raises(DataError, match="equal length"):
        plan_frames([0.0, 1.0], [1.0])
    with pytest.raises(DataError, match="not an interval"):
        plan_frames([2.0], [1.0])
    with pytest.raises(DataError, match="positive duration"):
        plan_frames([1.0], [1.0])
