"""A tiny StoryFrames-shaped dataset drawn on the spot, for trying `imagechain eval` on a CPU.

It has the Hub dataset's layout and columns (`scene_N/train|val`, `Dataset.save_to_disk`), so every
reader treats it as StoryFrames; the frames are flat coloured shapes and the descriptions come
from a few templates. It exists to run the pipeline end to end, not to measure anything.

    write_demo_storyframes("runs/tiny-storyframes")     # or: imagechain data demo runs/tiny-storyframes
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from imagechain.data.build_storyframes import features

ACTORS = ["A man", "A woman", "A child", "A dog", "A robot arm"]
ACTIONS = ["walks to the table", "picks up a red cup", "puts the cup down", "opens the door", "waves",
           "sits on the bench", "falls over", "stands up again"]
# (subset folder, split, scene counts of its stories)
LAYOUT = [("scene_2", "train", [2, 2, 2]), ("scene_2", "val", [2, 2]), ("scene_3", "train", [3, 3]),
          ("scene_3", "val", [3, 3]), ("scene_4_7", "train", [4, 5]), ("scene_4_7", "val", [4, 5, 6])]


def _frame(story: int, scene: int, frame: int, size=(64, 48)) -> Image.Image:
    image = Image.new("RGB", size, (40 + 30 * (story % 6), 60 + 25 * scene, 120))
    draw = ImageDraw.Draw(image)
    x = 6 + 10 * frame + 4 * scene
    draw.ellipse([x, 14, x + 16, 30], fill=(230, 200 - 20 * scene, 60))
    return image


def _row(index: int, scenes: int) -> dict:
    actor = ACTORS[index % len(ACTORS)]
    parts = [f"{actor} {ACTIONS[(index + s) % len(ACTIONS)]}." for s in range(scenes)]
    story_id = f"demo_{index:03d}.mp4---demo_{index:03d}_0"
    return {
        "story_id": story_id, "video_name": f"demo_{index:03d}.mp4", "question_info": f"demo_{index:03d}_0",
        "num_scenes": scenes, "scenes": [[_frame(index, s, k) for k in range(2)] for s in range(scenes)],
        "subsampled_frames_per_scene": [[s + 0.2, s + 0.7] for s in range(scenes)],
        "sentence_parts": parts, "sentence_parts_nocontext": parts,
        "start_times": [float(s) for s in range(scenes)], "end_times": [float(s + 1) for s in range(scenes)],
        "background_description": "In the background, there is a plain wall.", "caption": " ".join(parts),
        "num_actors_in_video": 1,
    }


def write_demo_storyframes(root: str | Path) -> Path:
    """Write the demo dataset under `root` (scene_*/train|val) and return `root`."""
    # here: datasets is slow to import; `imagechain --help` imports this module
    from datasets import Dataset
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()
    root, index = Path(root), 0
    for subset, split, counts in LAYOUT:
        rows = []
        for scenes in counts:
            rows.append(_row(index, scenes))
            index += 1
        columns = {name: [row[name] for row in rows] for name in rows[0]}
        Dataset.from_dict(columns, features=features()).save_to_disk(str(root / subset / split))
    return root

