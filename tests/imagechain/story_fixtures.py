"""Story data made in the test: a StoryFrames-shaped dataset, a run folder, synthetic videos.

Everything is made in the test: `Dataset.from_dict` with Image features saved in the Hub's
`save_to_disk` layout, task folders that validate against the schemas, and videos encoded with
PyAV whose frames carry their own frame number as a 10-bit stripe code (black/white stripes
survive H.264 and JPEG; the number is also drawn as text for a human looking at a frame).

The fixtures `storyframes_dir` and `run_dir` (tests/imagechain/conftest.py) are made by
`write_storyframes_dir` and `write_run_dir`; tests elsewhere (tests/vischain/commands/) define
theirs with the same two calls.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from imagechain.data.build_storyframes import features

BITS = 10  # frame numbers up to 1023: 35 s at 25 fps is 875 frames
VIDEO_SIZE = (120, 40)  # 12-pixel stripes; both sides even, as yuv420p needs


def code_frame(number: int) -> np.ndarray:
    image = Image.new("RGB", VIDEO_SIZE, (0, 0, 0))
    draw = ImageDraw.Draw(image)
    stripe = VIDEO_SIZE[0] // BITS
    for bit in range(BITS):
        if (number >> bit) & 1:
            draw.rectangle([bit * stripe, 0, (bit + 1) * stripe - 1, 29], fill=(255, 255, 255))
    draw.text((2, 29), str(number), fill=(255, 0, 0))
    return np.asarray(image)


def read_code(image: Image.Image) -> int:
    pixels = np.asarray(image.convert("L"))
    stripe = VIDEO_SIZE[0] // BITS
    return sum(1 << bit for bit in range(BITS) if pixels[5:25, bit * stripe + 3: bit * stripe + 9].mean() > 128)


def write_video(path: Path, seconds: float, fps: int, codec: str = "libx264") -> Path:
    import av  # here: only the video tests need FFmpeg

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = *VIDEO_SIZE, "yuv420p"
        for number in range(round(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(code_frame(number), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def frame_image(size=(64, 48), shade=0) -> Image.Image:
    return Image.new("RGB", size, (shade, 80, 160))


def storyframes_row(story_id: str, descriptions: list[str], frames_per_scene: int = 2, size=(64, 48)) -> dict:
    n = len(descriptions)
    return {
        "story_id": story_id, "video_name": story_id.split("---")[0], "question_info": story_id.split("---")[-1],
        "num_scenes": n,
        "scenes": [[frame_image(size, 20 * s + k) for k in range(frames_per_scene)] for s in range(n)],
        "subsampled_frames_per_scene": [[s + 0.2 + 0.5 * k for k in range(frames_per_scene)] for s in range(n)],
        "sentence_parts": descriptions, "sentence_parts_nocontext": descriptions,
        "start_times": [float(s) for s in range(n)], "end_times": [float(s + 1) for s in range(n)],
        "background_description": "In the background, there is a wall.", "caption": " ".join(descriptions),
        "num_actors_in_video": 1,
    }


def storyframes_features():
    """The columns of the Hub's scene_*/train/dataset_info.json (one definition, in the builder)."""
    return features()


def save_storyframes(root: Path, layout: dict[str, list[dict]], features=None) -> Path:
    """layout: "scene_2/train" -> rows; each saved with save_to_disk as the Hub repo stores it."""
    from datasets import Dataset  # here: slow to import, and most tests that import this module never call it

    for folder, rows in layout.items():
        columns = {name: [row[name] for row in rows] for name in rows[0]}
        Dataset.from_dict(columns, features=features or storyframes_features()).save_to_disk(str(root / folder))
    return root


# (story id, scene count, folder) of the StoryFrames-shaped fixture.
STORYFRAMES_LAYOUT = {
    "scene_1/val": [("v1---one_0", 1)],
    "scene_2/train": [("v2---two_0", 2), ("v2---two_1", 2)],
    "scene_2/val": [("v2---two_2", 2)],
    "scene_3/train": [("v3---three_0", 3)],
    "scene_3/val": [("v3---three_1", 3)],
    "scene_4_7/train": [("v4---four_0", 4), ("v6---six_0", 6)],
    "scene_8_plus/val": [("v8---eight_0", 8)],
}


def write_storyframes_dir(root: Path) -> Path:
    """The StoryFrames-shaped dataset of STORYFRAMES_LAYOUT under `root` (the `storyframes_dir` fixture)."""
    layout = {folder: [storyframes_row(story_id, [f"{story_id} scene {s + 1}." for s in range(n)])
                       for story_id, n in stories] for folder, stories in STORYFRAMES_LAYOUT.items()}
    return save_storyframes(root, layout)


def write_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=1))


def plan(kind: str, scene_descriptions: list[str], initial: str = "A workbench with a gearbox.") -> dict:
    images = [{"role": "correct", "description": "the right one"}, {"role": "distractor", "description": "a decoy"}]
    return {"task_kind": kind, "topic": "gearbox repair", "title": "Fix the gearbox",
            "initial_scene_description": initial,
            "steps": [{"question": f"Step {i + 1}?", "scene_description": text, "images": images}
                      for i, text in enumerate(scene_descriptions)]}


def itmr_task(folder: Path, correct: list[int], choices: int = 3) -> dict:
    """An ITMR task whose question i has `choices` images, choice correct[i] the right one."""
    questions = []
    for q, right in enumerate(correct):
        names = [f"q{q + 1}_{c + 1}.png" for c in range(choices)]
        for c, name in enumerate(names):
            frame_image((48, 48), 40 * q + c).save(folder / name)
        questions.append({"original_id": f"q{q + 1}", "question": f"Which image shows step {q + 1}?",
                          "task_description": "", "metadata": "",
                          "choices": [{"image": name, "correct": c == right} for c, name in enumerate(names)]})
    return {"initial_scene_description": "A workbench with a gearbox.", "questions": questions, "metadata": ""}


def iomr_task(folder: Path, correct: list[str]) -> dict:
    frame_image((48, 48), 7).save(folder / "start.png")
    steps = []
    for s, right in enumerate(correct):
        frame_image((48, 48), 9).save(folder / f"cond{s + 1}.png")
        options = []
        for letter in "ABC":
            frame_image((48, 48), 50 + 3 * s + "ABC".index(letter)).save(folder / f"s{s + 1}{letter}.png")
            options.append({"option": letter, "image": f"s{s + 1}{letter}.png"})
        steps.append({"step": s + 1, "condition": f"cond{s + 1}.png", "options": options, "correct_option": right})
    return {"initial_condition": "start.png", "steps": steps, "metadata": ""}


def write_run_dir(root: Path) -> Path:
    """ROOT/runs/eng: two ITMR tasks, one IOMR task and one ICIR task (which gives no story); the `run_dir` fixture."""
    run = root / "runs" / "eng"
    for task_id, correct in (("0001", [1, 0, 2]), ("0002", [0, 2])):
        folder = run / "tasks" / "itmr" / task_id
        folder.mkdir(parents=True)
        write_json(folder / "task.json", itmr_task(folder, correct))
        write_json(folder / "plan.json", plan("itmr", [f"{task_id}: step {i + 1} done." for i in range(len(correct))]))
    folder = run / "tasks" / "iomr" / "0003"
    folder.mkdir(parents=True)
    write_json(folder / "task.json", iomr_task(folder, ["B", "C"]))
    write_json(folder / "plan.json", plan("iomr", ["The cover is off.", "The gear is replaced."],
                                          initial="A closed gearbox."))
    (run / "tasks" / "icir" / "0004").mkdir(parents=True)
    write_json(run / "run.json", {"name": "eng"})
    return run
