"""Small pictures the project draws itself (released CC0), for the demo and the example run.

    python -m benchmark_data.drawings   # redraws benchmark_data/demo/gear.png and benchmark_data/demo_images/

`demo_images/` is the demo profile's offline search folder: 24 drawn workshop scenes of 256x256
(the fetcher keeps nothing under 224 px) with a licenses.jsonl the `folder` provider reads. Each
scene is a seeded random arrangement of parts on a bench colour, so no two are near duplicates under
the fetcher's pHash test (a seed that draws one is skipped).
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import imagehash
from PIL import Image, ImageDraw

HERE = Path(__file__).parent
DEMO_IMAGE_SIZE = 256
CC0 = "CC0 1.0"

# (title words the folder provider matches against queries, main colour)
DEMO_SCENES = [
    ("steel gear with ten teeth", (90, 100, 120)), ("brass gear on a workbench", (181, 140, 60)),
    ("bicycle chain and sprocket", (60, 60, 70)), ("spanner and hex nut", (150, 150, 160)),
    ("screwdriver heads in a row", (200, 60, 40)), ("circuit board with resistors", (30, 120, 60)),
    ("soldering iron tip", (170, 170, 175)), ("copper pipe fitting", (184, 115, 51)),
    ("allen key set", (40, 40, 45)), ("electrical plug wiring", (220, 200, 40)),
    ("radiator valve", (240, 240, 240)), ("light switch plate", (230, 230, 220)),
    ("concrete slab formwork", (160, 160, 150)), ("bicycle wheel spokes", (120, 120, 130)),
    ("lawn mower engine oil", (60, 110, 40)), ("drill bits by size", (100, 100, 110)),
    ("brick wall course", (170, 70, 50)), ("scaffold tower frame", (200, 160, 40)),
    ("transformer coil winding", (190, 110, 60)), ("mortise and tenon joint", (190, 150, 100)),
    ("folded sheet metal box", (140, 150, 160)), ("car tyre and jack", (35, 35, 35)),
    ("flat pack shelf panels", (210, 180, 140)), ("resistor colour bands", (210, 190, 150)),
]


def draw_gear(size: int = 96, teeth: int = 10, color=(90, 100, 120), background=(235, 235, 225)) -> Image.Image:
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    _texture(draw, size, f"gear {teeth} {color}", background)
    _gear(draw, size / 2, size / 2, size * 0.42, teeth, color, background)
    return image


def _gear(draw: ImageDraw.ImageDraw, cx: float, cy: float, outer: float, teeth: int, color, background) -> None:
    inner = outer * 0.76
    points = []
    for i in range(teeth * 4):
        angle = 2 * math.pi * i / (teeth * 4)
        radius = outer if i % 4 in (1, 2) else inner
        points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    draw.polygon(points, fill=color)
    hole = outer * 0.24
    draw.ellipse([cx - hole, cy - hole, cx + hole, cy + hole], fill=background)


def draw_panel(label: str, color=(120, 120, 120), size: int = 96) -> Image.Image:
    """A coloured card with a word on it: distinct, legible pictures for example tasks."""
    image = Image.new("RGB", (size, size), color)
    draw = ImageDraw.Draw(image)
    _texture(draw, size, f"panel {label} {color}", color)
    draw.rectangle([6, 6, size - 7, size - 7], outline=(255, 255, 255), width=3)
    draw.text((12, size // 2 - 6), label, fill=(255, 255, 255))
    return image


def _texture(draw: ImageDraw.ImageDraw, size: int, key: str, color) -> None:
    """Blocks of lighter and darker `color`, placed by `key`: flat cards would share one pHash, and a
    run's retrieved images must be more than the near-duplicate distance apart."""
    rng = random.Random(key)
    for _ in range(4):
        x, y = rng.randrange(size // 2), rng.randrange(size // 2)
        w, h = rng.randrange(size // 4, size // 2), rng.randrange(size // 4, size // 2)
        shade = rng.choice((0.55, 0.75, 1.25, 1.45))
        draw.rectangle([x, y, x + w, y + h], fill=tuple(min(255, int(c * shade)) for c in color))


def draw_scene(index: int, color, size: int = DEMO_IMAGE_SIZE) -> Image.Image:
    """A bench with parts on it: a gradient background split at a random height, then 3-6 shapes."""
    rng = random.Random(index)
    image = Image.new("RGB", (size, size))
    draw = ImageDraw.Draw(image)
    top = tuple(rng.randrange(40, 230) for _ in range(3))
    bench = tuple(rng.randrange(20, 200) for _ in range(3))
    horizon = rng.randrange(size // 4, 3 * size // 4)
    for y in range(size):  # a vertical gradient gives pHash low-frequency structure to tell scenes apart
        base = top if y < horizon else bench
        shade = (y if y < horizon else size - y) / size
        draw.line([(0, y), (size, y)], fill=tuple(int(c * (0.6 + 0.4 * shade)) for c in base))
    for _ in range(rng.randrange(3, 7)):
        x, y, r = rng.randrange(size), rng.randrange(size), rng.randrange(size // 10, size // 4)
        shape = rng.choice(("gear", "box", "disc"))
        if shape == "gear":
            _gear(draw, x, y, r, rng.randrange(6, 16), color, bench)
        elif shape == "box":
            draw.rectangle([x - r, y - r // 2, x + r, y + r // 2], fill=color, outline=(20, 20, 20), width=2)
        else:
            draw.ellipse([x - r, y - r, x + r, y + r], fill=tuple(255 - c for c in color))
    return image


def write_demo_images(out: Path = HERE / "demo_images", count: int = len(DEMO_SCENES), size: int = DEMO_IMAGE_SIZE,
                      min_phash_distance: int = 5) -> list[dict]:
    """Draw `count` scenes into `out` with a licenses.jsonl (CC0); skips seeds that draw near duplicates.

    Titles cycle through DEMO_SCENES; past the first round they get a number, so tests and benches
    can ask for a few hundred distinct images.
    """

    out.mkdir(parents=True, exist_ok=True)
    lines, hashes, seed = [], [], 0
    while len(lines) < count:
        seed += 1
        title, color = DEMO_SCENES[len(lines) % len(DEMO_SCENES)]
        image = draw_scene(seed, color, size)
        phash = imagehash.phash(image)
        if any(phash - other < min_phash_distance for other in hashes):
            continue
        hashes.append(phash)
        name = f"scene_{len(lines) + 1:02d}.png"
        image.save(out / name, optimize=True)
        if len(lines) >= len(DEMO_SCENES):
            title = f"{title} {len(lines) // len(DEMO_SCENES) + 1}"
        lines.append({"file": name, "title": title, "licence": CC0, "creator": "vischain contributors",
                      "attribution": "Drawn by vischain (CC0)", "page_url": None, "source_url": None})
    (out / "licenses.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return lines


def main() -> None:
    (HERE / "demo").mkdir(exist_ok=True)
    draw_gear().save(HERE / "demo" / "gear.png", optimize=True)
    write_demo_images()


if __name__ == "__main__":
    main()
