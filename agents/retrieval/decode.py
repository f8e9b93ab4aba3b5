"""Bytes to pixels: sniff the type from the bytes, decode under a pixel cap, normalise, hash.

An upright 8-bit RGB JPEG or opaque RGB PNG keeps its published bytes (its hash is the published
file's); anything else is converted to RGB and re-encoded (PNG for PNG/GIF sources, JPEG otherwise).
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass

import imagehash
import numpy as np
from PIL import Image, ImageOps

from agents.retrieval.policy import FetchPolicy, Refused

SNIFF_BYTES = 512  # enough to see past an XML prolog or a comment before "<svg" or "<html"
PIL_FORMAT = {"jpeg": "JPEG", "png": "PNG", "gif": "GIF", "webp": "WEBP"}
LOSSLESS = {"png", "gif"}  # diagrams and drawings: keep them lossless
EXIF_ORIENTATION = 0x0112


def sniff(head: bytes | bytearray) -> str:
    """What the first bytes say: jpeg, png, gif, webp, or a non-image kind (html, svg, xml, ...)."""
    head = bytes(head[:SNIFF_BYTES])
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if not head:
        return "empty"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if b"<svg" in text:
        return "svg"
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<!--", b"<script", b"<div")):
        return "html"
    if text.startswith(b"<?xml"):
        return "xml"
    if text.startswith((b"{", b"[")):
        return "json"
    if text.startswith(b"%pdf"):
        return "pdf"
    if head[4:8] == b"ftyp":
        return "avif/heic"  # Pillow decodes neither without plugins
    return "unknown bytes " + head[:4].hex()


def require_image(data: bytes | bytearray) -> str:
    kind = sniff(data)
    if kind not in PIL_FORMAT:
        raise Refused("empty body (0 bytes)" if kind == "empty" else f"not an image ({kind})")
    return kind


@dataclass(frozen=True)
class PreparedImage:
    """An image checked and ready for disk (lives for one call)."""

    data: bytes | bytearray
    extension: str
    sha256: str
    phash: str
    width: int
    height: int


def prepare_image(data: bytes | bytearray, policy: FetchPolicy) -> PreparedImage:
    """Decode under the pixel cap, check, hash, and re-encode when needed; raises Refused with a reason."""
    kind = require_image(data)
    try:
        with Image.open(io.BytesIO(data), formats=[PIL_FORMAT[kind]]) as image:
            pixels = image.width * image.height
            if pixels > policy.max_pixels:
                raise Refused(f"decompression bomb: {pixels} pixels > cap {policy.max_pixels}")
            if image.width < policy.min_width or image.height < policy.min_height:
                raise Refused(f"too small: {image.width}x{image.height} < {policy.min_width}x{policy.min_height}")
            if keeps_its_bytes(image, kind, data):
                return _as_published(image, kind, data)
            return _normalised(image, kind, policy)
    except Refused:
        raise
    except Image.DecompressionBombError as err:  # Pillow's own limit, twice Image.MAX_IMAGE_PIXELS
        found = re.search(r"\((\d+) pixels\)", str(err))
        pixels = found.group(1) if found else "?"
        raise Refused(f"decompression bomb: {pixels} pixels > cap {policy.max_pixels}") from None
    except Exception as err:  # a hostile file can break a decoder in many ways; each is a reason
        raise Refused(f"undecodable {kind}: {type(err).__name__}: {err}"[:200]) from None


def keeps_its_bytes(image: Image.Image, kind: str, data: bytes | bytearray) -> bool:
    """True for files already in the form we would write: an upright 8-bit RGB JPEG, or a still,
    opaque 8-bit RGB PNG (IHDR bit depth 8, colour type 2). Saving them byte for byte keeps their
    SHA-256 equal to the published file's, keeps colour profiles, and adds no re-encoding loss."""
    if kind == "jpeg":
        return image.mode == "RGB" and image.getexif().get(EXIF_ORIENTATION, 1) == 1
    if kind == "png":
        still = not getattr(image, "is_animated", False)
        return data[24:26] == b"\x08\x02" and still and "transparency" not in image.info
    return False


def _as_published(image: Image.Image, kind: str, data: bytes | bytearray) -> PreparedImage:
    width, height = image.size
    if kind == "jpeg":
        # libjpeg decodes at 1/8 scale: every byte is still entropy-decoded (a truncated or corrupt
        # file still fails), at about a third of the cost. The pHash of that decode was within 2 bits
        # of the full-size one on the bench images (mean 0.1), well inside the duplicate distance.
        image.draft("RGB", (max(64, width // 8), max(64, height // 8)))
    image.load()
    extension = "jpg" if kind == "jpeg" else "png"
    return PreparedImage(data, extension, hashlib.sha256(data).hexdigest(), str(imagehash.phash(image)), width, height)


def _normalised(image: Image.Image, kind: str, policy: FetchPolicy) -> PreparedImage:
    image.seek(0)  # an animation keeps its first frame
    if kind == "jpeg":
        ImageOps.exif_transpose(image, in_place=True)  # upright, since re-encoding drops EXIF
    rgb = to_rgb(image)
    buffer = io.BytesIO()
    if kind in LOSSLESS:
        rgb.save(buffer, "PNG")
    else:
        rgb.save(buffer, "JPEG", quality=policy.jpeg_quality)
    encoded = buffer.getvalue()
    extension = "png" if kind in LOSSLESS else "jpg"
    return PreparedImage(encoded, extension, hashlib.sha256(encoded).hexdigest(), str(imagehash.phash(rgb)),
                         rgb.width, rgb.height)


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB: 16-bit grey scaled (not clipped), alpha composited on white, CMYK/P/L converted."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        grey = np.asarray(image).astype(np.uint32) >> 8  # 0..65535 -> 0..255; convert() would clip
        image = Image.fromarray(grey.clip(0, 255).astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGB", rgba.size, (255, 255, 255))
        white.paste(rgba, mask=rgba.getchannel("A"))
        return white
    return image.convert("RGB") if image.mode != "RGB" else image.copy()  # copy: the file closes after
