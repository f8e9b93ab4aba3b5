"""Bytes to pixels: sniff the type from the bytes, decode under a pixel cap, normalise, hash.

What is stored is only the image. An upright 8-bit RGB JPEG or an opaque 8-bit RGB PNG keeps its
coded image data as published: `strip_to_image` walks its segments (JPEG) or chunks (PNG), keeps
those that decoding and colour need byte for byte, drops metadata (EXIF, XMP, IPTC, comments, text,
times) and cuts everything after the end marker. A file that was clean already keeps the published
bytes, and so the published file's hash. Anything else, and any file whose structure the walk does
not expect, is decoded, converted to RGB and re-encoded (PNG for PNG/GIF sources, JPEG otherwise)
with no metadata but an RGB colour profile. docs/fetch.md says what is kept and why.
"""

from __future__ import annotations

import hashlib
import io
import re
import zlib
from dataclasses import dataclass

import imagehash
import numpy as np
from PIL import Image, ImageOps

from agents.retrieval.policy import FetchPolicy, Refused

SNIFF_BYTES = 512  # enough to see past an XML prolog or a comment before "<svg" or "<html"
PIL_FORMAT = {"jpeg": "JPEG", "png": "PNG", "gif": "GIF", "webp": "WEBP"}
LOSSLESS = {"png", "gif"}  # diagrams and drawings: keep them lossless
EXIF_ORIENTATION = 0x0112

# JPEG markers (the byte after 0xFF). A decoder needs 0xC0-0xCF: the frame headers SOF0-SOF15,
# Huffman tables (DHT, 0xC4) and arithmetic-coding conditions (DAC, 0xCC), less JPG (0xC8, reserved);
# and 0xDB-0xDF: quantisation tables (DQT), line count (DNL), restart interval (DRI), hierarchical
# mode (DHP, EXP). SOS starts a scan; EOI ends the image.
JPEG_EOI, JPEG_SOS = 0xD9, 0xDA
JPEG_APP0, JPEG_APP2, JPEG_APP14, JPEG_COM = 0xE0, 0xE2, 0xEE, 0xFE
JPEG_DECODING = (set(range(0xC0, 0xD0)) - {0xC8}) | set(range(0xDB, 0xE0))
JPEG_METADATA = set(range(0xE0, 0xF0)) | {JPEG_COM}  # APP0-APP15 and COM: kept only as _kept_app_segment says
JPEG_MAX_SEGMENTS = 4096  # real files have tens; past this a hostile file would cost seconds of Python
# A marker: any 0xFF fill bytes, then the 0xFF and the code (0x00 after 0xFF is no marker).
JPEG_MARKER = re.compile(rb"\xff+([^\x00\xff])")
# Inside a scan's entropy-coded data 0xFF is followed by 0x00 (a stuffed 0xFF byte) or 0xD0-0xD7
# (a restart marker, part of the scan); 0xFF followed by anything else begins the marker after it.
JPEG_SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7]")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The pixels (IHDR, PLTE, IDAT, IEND, and tRNS, the transparency the pixels carry) and how to show
# their colours (gAMA, cHRM, sRGB, iCCP, sBIT, cICP). Every other chunk is metadata or a display hint.
PNG_KEPT = {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT", b"cICP"}


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
    """An image checked and ready for disk (lives for one call); every field describes `data`."""

    data: bytes | bytearray
    extension: str
    sha256: str
    phash: str
    width: int
    height: int


def prepare_image(data: bytes | bytearray, policy: FetchPolicy) -> PreparedImage:
    """Decode under the pixel cap, check, keep only the image, hash; raises Refused with a reason."""
    kind = require_image(data)
    try:
        with Image.open(io.BytesIO(data), formats=[PIL_FORMAT[kind]]) as image:
            pixels = image.width * image.height
            if pixels > policy.max_pixels:
                raise Refused(f"decompression bomb: {pixels} pixels > cap {policy.max_pixels}")
            if image.width < policy.min_width or image.height < policy.min_height:
                raise Refused(f"too small: {image.width}x{image.height} < {policy.min_width}x{policy.min_height}")
            if keeps_its_bytes(image, kind, data) and (stripped := strip_to_image(data, kind)) is not None:
                if stripped is data:  # nothing to drop: the open file is the one stored
                    return _as_coded(image, kind, data)
                # Hash and pHash what is stored, decoded from the stored bytes themselves.
                with Image.open(io.BytesIO(stripped), formats=[PIL_FORMAT[kind]]) as kept:
                    return _as_coded(kept, kind, stripped)
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
    """True for files whose coded image is already in the form we would write: an upright 8-bit RGB
    JPEG, or a still, opaque 8-bit RGB PNG (IHDR bit depth 8, colour type 2). Keeping their coded
    data adds no re-encoding loss and keeps colour profiles; only their metadata is dropped."""
    if kind == "jpeg":
        return image.mode == "RGB" and image.getexif().get(EXIF_ORIENTATION, 1) == 1
    if kind == "png":
        still = not getattr(image, "is_animated", False)
        return data[24:26] == b"\x08\x02" and still and "transparency" not in image.info
    return False


def strip_to_image(data: bytes | bytearray, kind: str) -> bytes | bytearray | None:
    """The file with its metadata dropped and nothing after its end marker, the kept parts byte for
    byte; `data` itself when there is nothing to drop. None when the structure is not what a well-formed
    JPEG or PNG has (no end marker, a segment or chunk running past the end, an unknown critical part,
    a PNG chunk with a wrong CRC): such a file is re-encoded from its decoded pixels instead."""
    if kind == "jpeg":
        return _jpeg_image_only(data)
    if kind == "png":
        return _png_image_only(data)
    return None


def _jpeg_image_only(data: bytes | bytearray) -> bytes | bytearray | None:
    """Walks the segments from SOI; each scan's entropy-coded data runs to the next marker, and a
    progressive file has several scans, with tables between them, before EOI."""
    end = len(data)
    parts: list[tuple[int, int] | bytes] = [(0, 2)]  # SOI (sniff checked it)
    position = 2
    for _ in range(JPEG_MAX_SEGMENTS):
        marker = JPEG_MARKER.match(data, position)
        if marker is None:
            return None  # stray bytes where a marker must be, or the file ends before EOI
        start = marker.start(1) - 1  # the 0xFF before the code: fill bytes before it are dropped
        code = data[start + 1]
        if code == JPEG_EOI:
            parts.append((start, start + 2))
            return _joined(data, parts)
        if start + 4 > end:
            return None
        segment_end = start + 2 + int.from_bytes(data[start + 2:start + 4], "big")
        if segment_end < start + 4 or segment_end > end:
            return None  # a length below its own two bytes, or past the end of the file
        if code == JPEG_SOS:
            scan_end = JPEG_SCAN_END.search(data, segment_end)
            if scan_end is None:
                return None
            parts.append((start, scan_end.start()))  # the scan header and its entropy-coded data
            position = scan_end.start()
            continue
        if code in JPEG_DECODING:
            parts.append((start, segment_end))
        elif code in JPEG_METADATA:
            if (kept := _kept_app_segment(data, start, segment_end)) is not None:
                parts.append(kept)
        else:
            return None  # SOI again, a restart marker outside a scan, or a reserved code
        position = segment_end
    return None


def _kept_app_segment(data: bytes | bytearray, start: int, end: int) -> tuple[int, int] | bytes | None:
    """Which APPn/COM segments stay: the JFIF header (it says the components are YCbCr, and carries
    only the pixel density) without its thumbnail, the ICC profile (APP2 ICC_PROFILE, in one or more
    segments) and Adobe's APP14 (its transform flag says whether the components are YCbCr or RGB).
    Everything else is metadata: EXIF (with GPS and its thumbnail) and XMP in APP1, IPTC and
    Photoshop data in APP13, MPF in APP2 (it indexes images appended after EOI), comments, maker data."""
    code, name = data[start + 1], bytes(data[start + 4:min(end, start + 16)])
    if code == JPEG_APP0 and name.startswith(b"JFIF\0") and end - start >= 18:
        if end - start == 18:  # the 16-byte JFIF header: no thumbnail
            return start, end
        # Identifier, version, density units and density (12 bytes), then a thumbnail size of 0x0.
        return b"\xff\xe0\x00\x10" + name + b"\x00\x00"
    if code == JPEG_APP2 and name.startswith(b"ICC_PROFILE\0"):
        return start, end
    if code == JPEG_APP14 and name.startswith(b"Adobe"):
        return start, end
    return None


def _png_image_only(data: bytes | bytearray) -> bytes | bytearray | None:
    """Walks the chunks after the signature, keeping PNG_KEPT and cutting after IEND. The CRC of every
    kept chunk is checked (zlib, in C): Pillow does not check IDAT's, and libpng refuses a file with a
    wrong one, so a file that fails is re-encoded from what Pillow decodes, or refused if it does not
    decode. Unknown ancillary chunks go; an unknown critical chunk, which a decoder must refuse, or
    an animation (acTL, whose first frame need not be the IDAT image) sends the file to re-encoding."""
    end = len(data)
    parts: list[tuple[int, int] | bytes] = [(0, len(PNG_SIGNATURE))]
    position = len(PNG_SIGNATURE)
    with memoryview(data) as view:
        while position + 12 <= end:
            kind = bytes(data[position + 4:position + 8])
            chunk_end = position + 12 + int.from_bytes(data[position:position + 4], "big")
            if chunk_end > end or not kind.isalpha() or kind == b"acTL":
                return None
            if kind in PNG_KEPT:
                covered = view[position + 4:chunk_end - 4]  # the CRC covers the chunk's type and data
                if zlib.crc32(covered) != int.from_bytes(data[chunk_end - 4:chunk_end], "big"):
                    return None
                parts.append((position, chunk_end))
                if kind == b"IEND":
                    return _joined(data, parts)
            elif kind[0] & 0x20 == 0:  # an upper-case first letter marks a critical chunk
                return None
            position = chunk_end
    return None  # no IEND


def _joined(data: bytes | bytearray, parts: list[tuple[int, int] | bytes]) -> bytes | bytearray:
    """The kept parts (spans of `data`, or new bytes) as one file; `data` itself when they cover all of it."""
    if all(isinstance(part, tuple) for part in parts) and sum(b - a for a, b in parts) == len(data):
        return data  # the spans are in order and do not overlap, so they are the whole file
    with memoryview(data) as view:
        return b"".join(view[part[0]:part[1]] if isinstance(part, tuple) else part for part in parts)


def _as_coded(image: Image.Image, kind: str, data: bytes | bytearray) -> PreparedImage:
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
    profile = _rgb_profile(image)
    if kind == "jpeg":
        ImageOps.exif_transpose(image, in_place=True)  # upright, since re-encoding drops EXIF
    rgb = to_rgb(image)
    # Pillow's encoders read the image's info: a JPEG keeps the source's comment, a PNG its ICC
    # profile (even a CMYK one). Nothing of the source's metadata may reach the new file.
    rgb.info = {}
    buffer = io.BytesIO()
    if kind in LOSSLESS:
        rgb.save(buffer, "PNG", icc_profile=profile)
    else:
        rgb.save(buffer, "JPEG", quality=policy.jpeg_quality, icc_profile=profile)
    encoded = buffer.getvalue()
    extension = "png" if kind in LOSSLESS else "jpg"
    return PreparedImage(encoded, extension, hashlib.sha256(encoded).hexdigest(), str(imagehash.phash(rgb)),
                         rgb.width, rgb.height)


def _rgb_profile(image: Image.Image) -> bytes | None:
    """The source's ICC profile when it describes RGB data (bytes 16-19 of an ICC header name the
    colour space), so Adobe RGB or Display P3 colours stay right after re-encoding. A CMYK or grey
    profile does not describe the RGB pixels written, so it is dropped."""
    profile = image.info.get("icc_profile")
    return profile if isinstance(profile, bytes) and profile[16:20] == b"RGB " else None


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
