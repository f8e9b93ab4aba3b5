"""Mementos files in the published layouts, written in the test: the description CSVs with each file's own
header (umd-huang-lab/Mementos for val, the si0wang fork for train), and image folders in the layout
imagechain/data/mementos.py reads."""

from __future__ import annotations

import csv
from pathlib import Path

from PIL import Image

# file -> (header, rows of (image name, description)); headers and name patterns as published.
PUBLISHED = {
    "cmc_description.csv": (("image_name", "gt_description"), [
        ("cmc_10.png", "A bear picks up a ball, then throws it into the hoop while a deer watches."),
        ("cmc_11.png", "A cat climbs the tree, slips, and falls onto the grass."),
    ]),
    "dl_description.csv": (("image_name", "description"), [
        ("rw_1042.png", 'A man sits on a white plastic chair, stands up, and walks to the door, saying "bye".'),
    ]),
    "robo_description.csv": (("image", "description"), [
        ("rb_7.png", "The robot arm grabs the red can and places it in the bowl."),
        ("rb_12.png", "The gripper opens the drawer,\nthen pushes it closed."),
    ]),
    "train_cmc_description.csv": (("image_name", "description"), [("cmc_1.png", "A dog runs.")]),
    "train_dl_description.csv": (("image_name", "human_description"), [("rw_5.png", "A woman cooks.")]),
    "train_robo_description.csv": (("image", "description"), [("rb_1.png", "The arm lifts a block.")]),
}
FRAMES = {"cmc_10.png": 3, "cmc_11.png": 2, "rw_1042.png": 2, "rb_7.png": 11, "rb_12.png": 2,
          "cmc_1.png": 2, "rw_5.png": 2, "rb_1.png": 2}


def write_mementos(root: Path) -> Path:
    """ROOT with every published CSV, ROOT/images/<stem>/frame_<k>.png frames and ROOT/images/<name> combined images.

    Each frame carries its own number in its red channel, so order is checkable."""
    root.mkdir(parents=True, exist_ok=True)
    for name, (header, rows) in PUBLISHED.items():
        with open(root / name, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)  # quotes the descriptions with commas, quotes or newlines
            writer.writerow(header)
            writer.writerows(rows)
    for image_name, count in FRAMES.items():
        folder = root / "images" / Path(image_name).stem
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(1, count + 1):
            Image.new("RGB", (48, 32), (10 * k, 60, 90)).save(folder / f"frame_{k}.png")
        Image.new("RGB", (96, 32), (200, 60, 90)).save(root / "images" / image_name)
    return root
