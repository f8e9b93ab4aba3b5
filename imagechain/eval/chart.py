"""A PNG bar chart of SimRate by evaluation context length, one bar colour per variant.

Drawn with Pillow (already a dependency) so that no plotting library is needed: groups along the
x axis are the Table 1 columns, bars within a group are the rows (variants), the y axis is SimRate
in percent with gridlines every 10 points, and a legend names each colour. Empty cells (no judged
prediction) are drawn as a short grey tick on the axis, so a missing bar is not mistaken for 0%.

    simrate_chart(results["rows"], COLUMNS, Path("out/simrate.png"))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]
WIDTH, HEIGHT = 1000, 520
LEFT, RIGHT, TOP, BOTTOM = 70, 230, 50, 60


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _scale_top(rows: Sequence[dict], columns: Sequence[str]) -> float:
    values = [row["cells"][c]["simrate"] for row in rows for c in columns if row["cells"][c]["simrate"] is not None]
    return max(10.0, 10.0 * math.ceil(max(values, default=0.0) / 10.0))


def simrate_chart(rows: Sequence[dict], columns: Sequence[str], path: Path, title: str = "SimRate (%) by context length"
                  ) -> Path:
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    top = _scale_top(rows, columns)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    y_of = lambda value: TOP + plot_h - plot_h * value / top  # noqa: E731
    draw.text((LEFT, 15), title, fill="black", font=_font(18))
    for tick in range(0, int(top) + 1, 10):
        y = y_of(tick)
        draw.line([(LEFT, y), (LEFT + plot_w, y)], fill=(225, 225, 225))
        draw.text((LEFT - 8, y), f"{tick}", fill="black", font=_font(12), anchor="rm")
    draw.line([(LEFT, TOP), (LEFT, TOP + plot_h), (LEFT + plot_w, TOP + plot_h)], fill="black")
    _bars(draw, rows, columns, plot_w, y_of)
    _legend(draw, rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
    return path


def _bars(draw: ImageDraw.ImageDraw, rows: Sequence[dict], columns: Sequence[str], plot_w: int, y_of) -> None:
    group_w = plot_w / max(1, len(columns))
    bar_w = group_w * 0.8 / max(1, len(rows))
    base = y_of(0)
    for g, column in enumerate(columns):
        x0 = LEFT + g * group_w + group_w * 0.1
        for r, row in enumerate(rows):
            value = row["cells"][column]["simrate"]
            left = x0 + r * bar_w
            if value is None:
                draw.line([(left + 1, base - 2), (left + bar_w - 1, base - 2)], fill=(170, 170, 170), width=2)
                continue
            draw.rectangle([left, y_of(value), left + bar_w - 1, base], fill=PALETTE[r % len(PALETTE)])
        draw.text((LEFT + g * group_w + group_w / 2, base + 8), column, fill="black", font=_font(14), anchor="mt")


def _legend(draw: ImageDraw.ImageDraw, rows: Sequence[dict]) -> None:
    x, y = WIDTH - RIGHT + 20, TOP
    for r, row in enumerate(rows):
        draw.rectangle([x, y + 2, x + 14, y + 16], fill=PALETTE[r % len(PALETTE)])
        label = row.get("label", row["variant"])
        draw.text((x + 20, y), label[:28], fill="black", font=_font(13))
        y += 22
