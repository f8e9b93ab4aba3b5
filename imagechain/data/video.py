"""Decode the frames of a video shown at given times, with PyAV (FFmpeg bindings).

"The frame at time t" is the frame on screen at t: the last frame whose presentation time is <= t,
times counted from the first frame (so a stream whose first timestamp is not 0, as MP4 edit lists
make, still starts at 0 s). The video is decoded forward once; StoryBench videos are seconds to a
few minutes long, so seeking would save little and cost correctness around keyframes.

    images = read_frames("clip.mp4", [0.2, 0.73, 1.8])   # PIL RGB images, in the order asked
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from schemas.errors import DataError

# Presentation times are rationals turned into floats (3 * 0.1 = 0.30000000000000004): a frame
# counts as shown at t when its time is <= t + 1 microsecond.
_TIME_EPS = 1e-6


def read_frames(path: str | Path, times: list[float]) -> list[Image.Image]:
    """The RGB frame shown at each time in `times` (seconds, any order, repeats allowed)."""
    import av  # here: only building a dataset from videos needs FFmpeg; `imagechain --help` imports this module

    if not times:
        return []
    order = sorted(range(len(times)), key=lambda i: times[i])
    found: dict[int, Image.Image] = {}
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DataError(f"{path}: no video stream")
            stream = container.streams.video[0]
            frame_seconds = 1 / float(stream.average_rate) if stream.average_rate else 0.0
            last_time, last_image = _walk(path, container.decode(stream), times, order, found)
    except av.FFmpegError as err:
        raise DataError(f"{path}: cannot decode video: {err}") from None
    if last_image is None:
        raise DataError(f"{path}: the video has no frames")
    for index in order[len(found):]:
        # Past the last frame's start: it is still on screen for one frame duration.
        if times[index] > last_time + frame_seconds + _TIME_EPS:
            raise DataError(f"{path}: no frame at {times[index]:.3f}s; the video ends at "
                            f"{last_time + frame_seconds:.3f}s")
        found[index] = last_image
    return [found[i] for i in range(len(times))]


def _walk(path, frames, times, order, found) -> tuple[float, Image.Image | None]:
    """Fill `found[i]` for each requested time reached, in time order; return the last frame seen."""
    first_time, previous, previous_time, next_index = None, None, 0.0, 0
    for frame in frames:
        if frame.time is None:
            continue
        first_time = frame.time if first_time is None else first_time
        frame_time = frame.time - first_time
        # Every requested time before this frame's start belongs to the previous frame; convert
        # to RGB only frames that are asked for (most frames of a video are not).
        image = None
        while next_index < len(order) and times[order[next_index]] + _TIME_EPS < frame_time:
            if previous is None:
                raise DataError(f"{path}: time {times[order[next_index]]}s is before the first frame")
            image = image or previous.to_image()
            found[order[next_index]] = image
            next_index += 1
        if next_index == len(order):
            return previous_time, image
        previous, previous_time = frame, frame_time
    return previous_time, previous.to_image() if previous is not None else None
