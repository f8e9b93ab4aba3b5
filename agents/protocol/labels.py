"""Labels drawn on candidate images: the number or letter the model answers with.

Each labelled copy is a content-addressed file (hash of image bytes, label and style), so only
paths travel in messages, state and logs, and a style change relabels.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from agents.backends.chat import file_sha256
from schemas.durable_files import write_atomically

LABEL_FRACTION = 0.12
"""Label text height as a share of the image's short side: 12% of a 512 px image is 61 px."""
LABEL_MIN_PX = 12
"""Smallest label text height: a label on a thumbnail stays readable (12 px is a usual minimum UI font size)."""
LABEL_STYLE = {"font": "Pillow ImageFont.load_default(size) (Aileron Regular, ships with Pillow)",
               "corner": "top-left", "size": f"{LABEL_FRACTION:.0%} of short side, min {LABEL_MIN_PX} px",
               "colours": "white text on a black box", "version": 1}
"""Recorded with scores; part of every labelled file's address, so a style change relabels."""


def label_px(width: int, height: int) -> int:
    return max(LABEL_MIN_PX, round(LABEL_FRACTION * min(width, height)))


@functools.lru_cache(maxsize=64)
def label_font(size: int) -> ImageFont.FreeTypeFont:
    # A scalable font in Pillow >= 10.1, no system fonts; cached: each load decodes the font file.
    return ImageFont.load_default(size=size)


def draw_label(image: Image.Image, label: str) -> Image.Image:
    """A copy of `image` with `label` in white on a black box in the top-left corner."""
    out = image.convert("RGB")
    size = label_px(*out.size)
    font = label_font(size)
    draw = ImageDraw.Draw(out)
    left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
    pad = max(2, size // 4)
    draw.rectangle([0, 0, right - left + 2 * pad, bottom - top + 2 * pad], fill=(0, 0, 0))
    draw.text((pad - left, pad - top), label, font=font, fill=(255, 255, 255))
    return out


def labelled_image(source: str | Path, label: str, labels_dir: Path) -> Path:
    """The labelled copy of `source`, drawn once: its name is the hash of image bytes, label and style."""
    blob = json.dumps([file_sha256(source), label, LABEL_STYLE], sort_keys=True)
    key = hashlib.sha256(blob.encode()).hexdigest()[:32]
    with Image.open(source) as image:
        is_jpeg = image.format == "JPEG"
        target = labels_dir / f"{key}.{'jpg' if is_jpeg else 'png'}"
        if target.is_file():
            return target
        labelled = draw_label(image, label)
    # JPEG sources stay JPEG (a photo as PNG is ~5x larger); drawings stay lossless.
    buffer = io.BytesIO()
    labelled.save(buffer, format="JPEG" if is_jpeg else "PNG", quality=95)
    return write_atomically(target, buffer.getvalue(), fsync=False)  # concurrent tasks may label the same image


