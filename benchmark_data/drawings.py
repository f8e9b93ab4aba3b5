"""Small pictures the project draws itself (released CC0), for the demo and the example run.

    python -m benchmark_data.drawings   # redraws benchmark_data/demo/*.png
"""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw


def draw_gear(size: int = 96, teeth: int = 10, color=(90, 100, 120), background=(235, 235, 225)) -> Image.Image:
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    centre, outer, inner = size / 2, size * 0.42, size * 0.32
    points = []
    for i in range(teeth * 4):
        angle = 2 * math.pi * i / (teeth * 4)
        radius = outer if i % 4 in (1, 2) else inner
        points.append((centre + radius * math.cos(angle), centre + radius * math.sin(angle)))
    draw.polygon(points, fill=color)
    hole = size * 0.1
    draw.ellipse([centre - hole, centre - hole, centre + hole, centre + hole], fill=background)
    return image


def main() -> None:
    out = Path(__file__).parent / "demo"
    out.mkdir(exist_ok=True)
    draw_gear().save(out / "gear.png", optimize=True)


if __name__ == "__main__":
    main()


def draw_panel(label: str, color=(120, 120, 120), size: int = 96) -> Image.Image:
    """A coloured card with a word on it: distinct, legible pictures for example tasks."""
    image = Image.new("RGB", (size, size), color)
    draw = ImageDraw.Draw(image)
    draw.rectangle([6, 6, size - 7, size - 7], outline=(255, 255, 255), width=3)
    draw.text((12, size // 2 - 6), label, fill=(255, 255, 255))
    return image
