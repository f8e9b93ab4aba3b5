"""A stored image holds only the image: `prepare_image` drops metadata and what follows the end marker.

Each case hides marker strings (…SECRET) in the places the web hides data: EXIF with GPS, XMP,
IPTC, comments, PNG text and time chunks, a zip appended after the end marker. The stored bytes
must decode to the original pixels, contain none of them, and, where only metadata was added to a
clean file, equal that clean file byte for byte.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms, ImageDraw
from PIL.PngImagePlugin import PngInfo

from agents.retrieval.decode import PreparedImage, prepare_image, strip_to_image
from agents.retrieval.policy import FetchPolicy, Refused

POLICY = FetchPolicy(min_width=8, min_height=8)
SRGB_PROFILE = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def picture(size=(64, 48)) -> Image.Image:
    image = Image.new("RGB", size, (20, 110, 190))
    draw = ImageDraw.Draw(image)
    draw.ellipse([4, 4, size[0] // 2, size[1] // 2], fill=(240, 30, 20))
    draw.rectangle([size[0] // 2, size[1] // 3, size[0] - 3, size[1] - 3], fill=(250, 230, 40))
    return image


def encode(image: Image.Image, fmt: str = "JPEG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def exif_with_gps(orientation: int = 1) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x013B] = "EXIF ARTIST SECRET"  # Artist
    exif[0x010F] = "EXIF MAKE SECRET"  # Make
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (52.0, 22.0, 31.0), 3: "E", 4: (4.0, 53.0, 12.0), 27: b"ASCII\0\0\0GPS SECRET"})
    return exif.tobytes()


def jpeg_segment(code: int, payload: bytes) -> bytes:
    return bytes([0xFF, code]) + struct.pack(">H", len(payload) + 2) + payload


def after_soi(jpeg: bytes, *segments: bytes) -> bytes:
    return jpeg[:2] + b"".join(segments) + jpeg[2:]


def iptc_segment(caption: bytes) -> bytes:
    """APP13 as Photoshop writes it: an 8BIM resource 0x0404 holding an IPTC caption (record 2:120)."""
    iptc = b"\x1c\x02\x78" + struct.pack(">H", len(caption)) + caption
    resource = b"8BIM" + struct.pack(">H", 0x0404) + b"\0\0" + struct.pack(">I", len(iptc)) + iptc
    return jpeg_segment(0xED, b"Photoshop 3.0\0" + resource)


def zip_archive() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("ZIP NAME SECRET.txt", "zip contents")
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_chunks(data: bytes) -> list[bytes]:
    """Chunk types in order; asserts every CRC is right."""
    kinds, position = [], 8
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 4:position + 8 + length]
        assert struct.unpack(">I", data[position + 8 + length:position + 12 + length])[0] == zlib.crc32(body)
        kinds.append(kind)
        position += 12 + length
    return kinds


def stored(data: bytes) -> PreparedImage:
    """prepare_image, with the checks every stored file passes: hashes and size describe the stored bytes."""
    image = prepare_image(data, POLICY)
    assert image.sha256 == hashlib.sha256(image.data).hexdigest()
    with Image.open(io.BytesIO(image.data)) as saved:
        assert saved.size == (image.width, image.height) and saved.mode == "RGB"
    return image


def assert_nothing_hidden(data: bytes) -> None:
    for hidden in (b"SECRET", b"Exif\0\0", b"http://ns.adobe.com/xap/1.0/", b"Photoshop 3.0", b"PK\x03\x04"):
        assert hidden not in data, hidden


# --- JPEG -----------------------------------------------------------------------------------------

CLEAN_JPEG = encode(picture(), quality=90)
AFTER_JFIF = 4 + int.from_bytes(CLEAN_JPEG[4:6], "big")  # SOI, then Pillow's APP0 JFIF segment

JPEG_CASES = {
    "exif with GPS": encode(picture(), quality=90, exif=exif_with_gps()),
    "xmp": encode(picture(), quality=90, xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/">XMP SECRET</x:xmpmeta>'),
    "comment": encode(picture(), quality=90, comment=b"COM SECRET"),
    "iptc": CLEAN_JPEG[:AFTER_JFIF] + iptc_segment(b"IPTC CAPTION SECRET") + CLEAN_JPEG[AFTER_JFIF:],
    "zip appended": CLEAN_JPEG + zip_archive(),
    "other APPn": CLEAN_JPEG[:AFTER_JFIF] + jpeg_segment(0xEC, b"Ducky\0APP12 SECRET")
                  + jpeg_segment(0xE2, b"FPXR\0SECRET") + jpeg_segment(0xE3, b"APP3 SECRET") + CLEAN_JPEG[AFTER_JFIF:],
    "all of them": encode(picture(), quality=90, exif=exif_with_gps(), comment=b"COM SECRET", xmp=b"XMP SECRET")
                   + b"TRAILING SECRET\xff\xd9" + zip_archive(),
}


def test_a_clean_file_keeps_its_published_bytes():
    for kind, data in (("jpeg", CLEAN_JPEG), ("png", encode(picture(), "PNG"))):
        assert strip_to_image(data, kind) is data
        assert stored(data).data == data


@pytest.mark.parametrize("case", JPEG_CASES)
def test_jpeg_metadata_and_trailing_data_are_dropped(case):
    data = JPEG_CASES[case]
    assert CLEAN_JPEG[AFTER_JFIF:] in data and b"SECRET" in data  # the clean file's frame and scan, plus hidden data
    image = stored(data)
    assert image.data == CLEAN_JPEG  # Pillow's JFIF header, tables and scan, byte for byte
    assert (pixels(image.data) == pixels(data)).all()
    assert_nothing_hidden(image.data)


def test_progressive_jpeg_keeps_every_scan():
    clean = encode(picture((120, 90)), quality=90, progressive=True)
    data = encode(picture((120, 90)), quality=90, progressive=True, exif=exif_with_gps(),
                  comment=b"COM SECRET") + zip_archive()
    assert clean.count(b"\xff\xda") > 3  # several scans, with tables between them
    image = stored(data)
    assert image.data == clean and (pixels(image.data) == pixels(data)).all()
    assert_nothing_hidden(image.data)


def test_restart_markers_stuffing_and_fill_bytes_are_kept_as_coded():
    clean = encode(picture(), quality=95, restart_marker_blocks=1)
    assert clean.count(b"\xff\xd0") and clean.count(b"\xff\x00")  # RST0 and stuffed 0xFF bytes in the scan
    with_fill = clean[:2] + b"\xff\xff\xff" + clean[2:-2] + b"\xff\xff\xd9"  # 0xFF fill bytes before markers
    image = stored(with_fill + b"after EOI SECRET")
    assert image.data == clean and (pixels(image.data) == pixels(clean)).all()


def test_colour_segments_are_kept():
    """ICC profile (APP2) and Adobe's transform flag (APP14, here: components coded as RGB, not YCbCr)."""
    clean = encode(picture(), quality=90, icc_profile=SRGB_PROFILE, keep_rgb=True)
    assert b"ICC_PROFILE\0" in clean and b"Adobe" in clean
    data = after_soi(clean, jpeg_segment(0xFE, b"COM SECRET")) + b"TRAILING SECRET"
    image = stored(data)
    assert image.data == clean and (pixels(image.data) == pixels(clean)).all()


def test_jfif_thumbnail_is_dropped_and_the_header_kept():
    jfif = b"JFIF\0\x01\x02\x01\x00\x48\x00\x48"  # version 1.2, 72 dpi
    thumbnail = bytes([2, 1]) + b"THUMB SECRET"[:6]  # 2x1 pixels of 3 bytes
    data = CLEAN_JPEG[:2] + jpeg_segment(0xE0, jfif + thumbnail) + CLEAN_JPEG[AFTER_JFIF:]
    image = stored(data)
    assert image.data == CLEAN_JPEG[:2] + jpeg_segment(0xE0, jfif + b"\0\0") + CLEAN_JPEG[AFTER_JFIF:]
    assert b"THUMB" not in image.data and (pixels(image.data) == pixels(data)).all()


def test_multi_picture_file_keeps_its_first_image():
    """MPO (stereo and phone cameras): an APP2 MPF index, and more JPEGs appended after the first EOI."""
    mpo = encode(picture(), "MPO", save_all=True, append_images=[picture().rotate(180)])
    assert b"MPF\0" in mpo and mpo.count(b"\xff\xd8\xff") == 2
    image = stored(mpo)
    assert b"MPF\0" not in image.data and image.data.count(b"\xff\xd8\xff") == 1
    assert (pixels(image.data) == pixels(encode(picture()))).all()

def test_rotated_jpeg_is_re_encoded_upright_without_metadata_but_with_its_rgb_profile():
    data = encode(picture((80, 40)), quality=90, exif=exif_with_gps(orientation=6), comment=b"COM SECRET",
                  xmp=b"XMP SECRET", icc_profile=SRGB_PROFILE) + zip_archive()
    image = stored(data)
    assert (image.width, image.height) == (40, 80)
    assert_nothing_hidden(image.data)
    with Image.open(io.BytesIO(image.data)) as saved:
        assert saved.info.get("icc_profile") == SRGB_PROFILE and not saved.getexif()


def test_broken_jpeg_structure_is_re_encoded_or_refused():
    no_eoi = CLEAN_JPEG[:-2]
    assert strip_to_image(no_eoi, "jpeg") is None
    with pytest.raises(Refused, match="^undecodable jpeg"):
        prepare_image(no_eoi, POLICY)  # Pillow refuses a scan that runs to the end of the file
    # An APP1 whose length runs past the end of the file: the walk gives up; Pillow does too.
    assert strip_to_image(CLEAN_JPEG[:2] + b"\xff\xe1\xff\xff" + b"x" * 10, "jpeg") is None
    # Stray bytes between two segments: libjpeg skips them, the walk gives up, so the file is re-encoded.
    stray = CLEAN_JPEG[:AFTER_JFIF] + b"STRAY SECRET" + CLEAN_JPEG[AFTER_JFIF:]
    assert strip_to_image(stray, "jpeg") is None
    image = stored(stray)
    assert image.data != CLEAN_JPEG and b"SECRET" not in image.data
    # More segments than any photo has: the walk stops early and the file is re-encoded.
    many = CLEAN_JPEG[:AFTER_JFIF] + jpeg_segment(0xFE, b"") * 5000 + CLEAN_JPEG[AFTER_JFIF:]
    assert strip_to_image(many, "jpeg") is None and stored(many).data != many


# --- PNG ------------------------------------------------------------------------------------------


def test_png_metadata_and_trailing_data_are_dropped():
    text = PngInfo()
    text.add_text("Author", "TEXT SECRET")
    text.add_text("Comment", "ZTXT SECRET " * 20, zip=True)
    text.add_itxt("Description", "ITXT SECRET", lang="en")
    clean = encode(picture(), "PNG", icc_profile=SRGB_PROFILE)
    full = encode(picture(), "PNG", icc_profile=SRGB_PROFILE, pnginfo=text, exif=exif_with_gps(), dpi=(300, 300))
    ihdr_end = 8 + 25
    extra = (png_chunk(b"gAMA", struct.pack(">I", 45455))
             + png_chunk(b"tIME", struct.pack(">HBBBBB", 2024, 5, 6, 7, 8, 9))
             + png_chunk(b"prVt", b"PRIVATE CHUNK SECRET"))
    published = full[:ihdr_end] + extra + full[ihdr_end:]
    assert {b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"pHYs", b"tIME", b"prVt", b"iCCP"} <= set(png_chunks(published))
    data = published + b"TRAILING SECRET" + zip_archive()

    image = stored(data)
    assert png_chunks(image.data) == [b"IHDR", b"gAMA", b"iCCP", b"IDAT", b"IEND"]
    assert image.data == clean[:ihdr_end] + extra[:16] + clean[ihdr_end:]  # the clean file plus gAMA
    assert (pixels(image.data) == pixels(data)).all()
    assert_nothing_hidden(image.data)


def test_png_with_a_bad_crc_is_re_encoded():
    clean = encode(picture(), "PNG")
    broken = bytearray(clean)
    broken[clean.index(b"IEND") - 5] ^= 0xFF  # the last byte of IDAT's CRC, which Pillow does not check
    assert strip_to_image(bytes(broken), "png") is None
    image = stored(bytes(broken))
    assert png_chunks(image.data)[0] == b"IHDR" and (pixels(image.data) == pixels(clean)).all()


def test_unknown_critical_chunk_and_animation_are_not_walked():
    clean = encode(picture(), "PNG")
    assert strip_to_image(clean[:33] + png_chunk(b"CRIT", b"x") + clean[33:], "png") is None
    frames = [picture(), picture().rotate(90)]
    animated = encode(frames[0], "PNG", save_all=True, append_images=frames[1:])
    assert strip_to_image(animated, "png") is None


# --- re-encoded files -----------------------------------------------------------------------------


def test_re_encoded_files_carry_no_metadata():
    cmyk_profile = SRGB_PROFILE[:16] + b"CMYK" + SRGB_PROFILE[20:]
    cases = {
        "cmyk jpeg": encode(Image.new("CMYK", (40, 30), (0, 255, 255, 0)), comment=b"COM SECRET",
                            exif=exif_with_gps(), xmp=b"XMP SECRET", icc_profile=cmyk_profile),
        "grey jpeg": encode(picture().convert("L"), comment=b"COM SECRET", exif=exif_with_gps()),
        "gif": encode(picture().convert("P"), "GIF", comment=b"COM SECRET") + b"TRAILING SECRET",
        "webp": encode(picture(), "WEBP", exif=exif_with_gps(), xmp=b"XMP SECRET"),
        "alpha png": encode(picture().convert("RGBA"), "PNG", exif=exif_with_gps()) + b"TRAILING SECRET",
    }
    for name, data in cases.items():
        assert b"SECRET" in data, name
        image = stored(data)
        assert_nothing_hidden(image.data)
        with Image.open(io.BytesIO(image.data)) as saved:
            assert "icc_profile" not in saved.info and not saved.getexif(), name  # a CMYK profile fits no RGB pixel


def test_a_stored_file_is_stored_as_it_is():
    for data in [*JPEG_CASES.values(), encode(picture(), "GIF", comment=b"x"), encode(picture(), "WEBP")]:
        image = stored(data)
        assert prepare_image(image.data, POLICY).data == image.data


# --- hostile bytes --------------------------------------------------------------------------------

def png_with_text(size) -> bytes:
    text = PngInfo()
    text.add_text("Author", "TEXT")
    return encode(picture(size), "PNG", pnginfo=text, dpi=(72, 72))


SEEDS = [
    encode(picture((24, 16)), quality=80, exif=exif_with_gps(), comment=b"COM") + b"PK\x03\x04tail",
    encode(picture((24, 16)), quality=80, progressive=True, restart_marker_blocks=1),
    png_with_text((24, 16)) + b"tail",
]


@st.composite
def mutated(draw) -> bytes:
    """A seed file cut short, or with bytes overwritten, inserted or deleted (one to three edits),
    half of them near the end, where the end marker and trailing data are."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 3))):
        edit = draw(st.sampled_from(["cut", "overwrite", "insert", "delete"]))
        # Past the 8-byte PNG signature, so the type is still sniffed.
        at = draw(st.integers(8, len(data)) | st.integers(max(8, len(data) - 40), len(data)))
        if edit == "cut":
            del data[at:]
        elif edit == "overwrite":
            data[at:at + 2] = draw(st.binary(min_size=1, max_size=2))
        elif edit == "insert":
            data[at:at] = draw(st.sampled_from([b"\xff", b"\xff\xd9", b"\xff\xda", b"\xff\xe1\xff\xff", b"\xff\xd8",
                                                b"IEND", b"\0\0\0\0IEND", png_chunk(b"tEXt", b"k\0v")]))
        else:
            del data[at:at + draw(st.integers(1, 8))]
    return bytes(data)


@pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin")  # Pillow on a mangled EXIF block
@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_or_truncated_bytes_are_kept_clean_re_encoded_or_refused(data):
    kind = "jpeg" if data.startswith(b"\xff\xd8") else "png"
    assert isinstance(strip_to_image(data, kind), bytes | type(None))  # the walk itself never raises
    try:
        image = stored(data)
    except Refused as refusal:
        assert str(refusal)
        return
    assert image.data.endswith(b"\xff\xd9" if image.extension == "jpg" else b"IEND\xaeB`\x82")
    assert prepare_image(image.data, POLICY).data == image.data
