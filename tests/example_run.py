"""Builds the small valid example run shipped in benchmark_data/example_run/ (one task of each kind).

Every image is drawn by `benchmark_data.drawings` and released CC0, so the run is valid under the
default licence policy. It lives with the tests (tests/benchmark_data/test_example_run.py checks
that it rebuilds the shipped folder exactly) because it writes through the run store, a layer
above the data. Rebuild the shipped folder with:

    .venv/bin/python -m tests.example_run
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import imagehash
from PIL import Image

from agents.backends.chat import file_sha256
from benchmark_data import EXAMPLE_RUN
from benchmark_data.drawings import draw_gear, draw_panel
from schemas.run_store import RunStore

CC0 = {"id": "cc0", "version": "1.0", "url": "https://creativecommons.org/publicdomain/zero/1.0/",
       "verified": True, "filter": None}


def itmr_task() -> tuple[dict, dict, dict]:
    images = {"q1_a.png": draw_gear(teeth=8), "q1_b.png": draw_panel("wrench", (180, 60, 60)),
              "q1_c.png": draw_panel("ruler", (60, 60, 180)), "q2_a.png": draw_panel("oil", (200, 170, 40)),
              "q2_b.png": draw_gear(teeth=14, color=(60, 140, 60)), "q2_c.png": draw_panel("tape", (120, 120, 120))}
    task = {
        "initial_scene_description": "A gearbox is open on the bench; one gear has a broken tooth.",
        "questions": [
            {"original_id": "1", "question": "Which part replaces the broken gear?",
             "task_description": "Pick the part.",
             "choices": [{"image": "q1_a.png", "correct": True}, {"image": "q1_b.png", "correct": False},
                         {"image": "q1_c.png", "correct": False}], "metadata": ""},
            {"original_id": "2", "question": "What do you apply before closing the box?",
             "task_description": "Pick the step.",
             "choices": [{"image": "q2_b.png", "correct": False}, {"image": "q2_a.png", "correct": True},
                         {"image": "q2_c.png", "correct": False}], "metadata": ""},
        ],
        "metadata": json.dumps({"domain": "engineering", "topic": "repairing a gearbox"}),
    }
    plan = {"task_kind": "itmr", "topic": "repairing a gearbox", "title": "Replace a broken gear",
            "initial_scene_description": task["initial_scene_description"],
            "steps": [{"question": "Which part replaces the broken gear?",
                       "scene_description": "A new eight-tooth gear is ready to fit.",
                       "images": [{"role": "correct", "description": "an eight-tooth gear"},
                                  {"role": "distractor", "description": "a wrench"},
                                  {"role": "distractor", "description": "a ruler"}]},
                      {"question": "What do you apply before closing the box?",
                       "scene_description": "Oil is applied to the gears.",
                       "images": [{"role": "correct", "description": "an oil can"},
                                  {"role": "distractor", "description": "a large gear"},
                                  {"role": "distractor", "description": "a roll of tape"}]}]}
    return task, plan, images


def icir_task() -> tuple[dict, dict, dict]:
    steps, images = [], {}
    for step, teeth in enumerate((6, 9, 12), start=1):
        names = [f"s{step}_{i}.png" for i in (1, 2, 3)]
        pictures = [(draw_gear(teeth=teeth), "matching gear"), (draw_panel(f"{teeth}?", (90, 90, 200)), "label card"),
                    (draw_gear(teeth=teeth + 5, color=(150, 80, 80)), "larger gear")]
        shift = step - 1  # the right answer moves: image 1, then 2, then 3
        pictures = pictures[-shift:] + pictures[:-shift] if shift else pictures
        images.update({name: picture for name, (picture, _) in zip(names, pictures)})
        steps.append({"step": step, "description": f"Find the gear with {teeth} teeth.", "answer_label": shift + 1,
                      "images": [{"image_id": i + 1, "image_description": d, "image": n} for i, (n, (_, d)) in
                                 enumerate(zip(names, pictures))]})
    task = {"task": "Pick the gear with the stated tooth count.", "question_start_label": 3, "steps": steps,
            "metadata": json.dumps({"domain": "engineering", "topic": "counting gear teeth"})}
    return task, None, images


def iomr_task() -> tuple[dict, dict, dict]:
    images = {"start.png": draw_panel("start", (100, 100, 100))}
    steps = []
    for step, word in enumerate(("cut", "bend"), start=1):
        images[f"c{step}.png"] = draw_panel(f"after {step - 1}", (80, 80, 80 + 40 * step))
        options = []
        for letter, colour in zip("ABC", ((200, 60, 60), (60, 200, 60), (60, 60, 200))):
            name = f"s{step}_{letter}.png"
            images[name] = draw_panel(f"{word} {letter}", colour)
            options.append({"option": letter, "image": name})
        steps.append({"step": step, "condition": f"c{step}.png", "options": options, "correct_option": "BC"[step - 1]})
    task = {"initial_condition": "start.png", "steps": steps,
            "metadata": json.dumps({"domain": "engineering", "topic": "shaping a metal sheet"})}
    return task, None, images


def main(out: Path = EXAMPLE_RUN) -> None:
    if out.exists():
        shutil.rmtree(out)
    licences = {"allow": ["cc0", "pdm", "by", "by-sa"], "accept_unverified": False}
    store = RunStore.create(out, config={"domain": "engineering", "profile": "example", "licences": licences})
    for kind, build in (("itmr", itmr_task), ("icir", icir_task), ("iomr", iomr_task)):
        task, plan, pictures = build()
        with tempfile.TemporaryDirectory() as scratch:
            files = {}
            for name, picture in pictures.items():
                picture.save(Path(scratch) / name, optimize=True)
                files[name] = Path(scratch) / name
            folder = store.write_task(kind, f"{kind}-0001", task, files, {"plan.json": plan} if plan else None)
        store.append_provenance([provenance_line(folder / name, out) for name in pictures])
    store.refresh_counts()
    store.set_status("complete")
    store.update_run(created="2026-11-23T00:00:00Z", versions={})  # stable file: no machine facts in git


def provenance_line(path: Path, root: Path) -> dict:
    with Image.open(path) as image:
        phash = str(imagehash.phash(image))
    return {"file": str(path.relative_to(root)), "sha256": file_sha256(path), "phash": phash,
            "provider": "drawn", "source_url": None, "page_url": None, "licence": CC0,
            "creator": "vischain contributors", "attribution": "Drawn by vischain (CC0)", "synthetic": False,
            "generator": None, "validator": None}


if __name__ == "__main__":
    main()
