"""The fetcher against a local web server that plays the hostile internet (127.0.0.1 only).

Every case ends as a kept image or a rejection with a reason, within a few seconds, and never
raises. Nothing here reaches the internet: the only address any test connects to is 127.0.0.1,
and the private-address cases are refused by the guard before a socket opens.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import struct
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from PIL.PngImagePlugin import PngInfo

import agents.retrieval.fetch as fetch_module
from agents.retrieval.decode import sniff, strip_to_image
from agents.retrieval.fetch import Fetcher, FetchPolicy, Kept, Rejected
from agents.retrieval.guard import forbidden_kind
from agents.retrieval.search.candidate import Candidate
from schemas.licences import Licence, LicencePolicy
from schemas.schema_check import require

CAP = 200_000
POLICY = FetchPolicy(max_bytes=CAP, min_width=16, min_height=16, allow_loopback=True, connect_timeout=1,
                     read_timeout=1, total_timeout=1, max_redirects=3)
CC_BY = Licence("by", "4.0", "https://creativecommons.org/licenses/by/4.0/", verified=True)


class LocalWeb:
    """A web server on 127.0.0.1: path -> (status, headers, body), or a function(handler) for odd ones."""

    def __init__(self):
        self.routes: dict[str, object] = {}
        self.requests: list[str] = []
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), type("H", (_Handler,), {"web": self}))
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, address: None  # our client hangs up on purpose

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def add(self, path: str, body: bytes, content_type: str = "image/jpeg", status: int = 200, headers=None):
        self.routes[path] = (status, {"Content-Type": content_type, **(headers or {})}, body)
        return self.url(path)

    def redirect(self, path: str, location: str) -> str:
        return self.add(path, b"", "text/plain", 302, {"Location": location})


class _Handler(BaseHTTPRequestHandler):
    web: LocalWeb
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        with self.web.lock:
            self.web.requests.append(self.path)
            self.web.in_flight += 1
            self.web.max_in_flight = max(self.web.max_in_flight, self.web.in_flight)
        try:
            route = self.web.routes.get(self.path)
            if callable(route):
                return route(self)
            status, headers, body = route or (404, {"Content-Type": "text/plain"}, b"not found")
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            with self.web.lock:
                self.web.in_flight -= 1


@pytest.fixture
def web():
    server = LocalWeb()
    threading.Thread(target=server.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def picture(size=(96, 72), seed=0, mode="RGB") -> Image.Image:
    """A drawn picture with structure, so perceptual hashes of different seeds differ."""
    image = Image.new("RGB", size, (30 + 40 * seed % 200, 90, 160))
    draw = ImageDraw.Draw(image)
    for i in range(6):
        x, y = (13 * (i + 1) * (seed + 3)) % size[0], (29 * (i + 2) * (seed + 1)) % size[1]
        draw.ellipse([x - 12, y - 9, x + 12, y + 9], fill=((70 * i + 50 * seed) % 256, 255 - 30 * i, 40 * i % 256))
    draw.rectangle([0, 0, size[0] // (2 + seed % 3), size[1] // 3], fill=(250, 240 - 20 * seed % 200, 20))
    return image.convert(mode) if mode != "RGB" else image


def encode(image: Image.Image, fmt: str = "JPEG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def candidate(url: str, licence=CC_BY) -> Candidate:
    return Candidate(url=url, page_url="https://example.org/page", title="a test picture", provider="openverse",
                     licence=licence, creator="Tester", attribution='"a test picture" by Tester, CC BY 4.0')


def fetch_all(tmp_path: Path, urls: list[str], policy: FetchPolicy = POLICY, licences=LicencePolicy()):
    """Fetch `urls` with one Fetcher; asserts the whole batch ends within 5 s."""
    async def run():
        async with Fetcher(tmp_path, policy, licences) as fetcher:
            return await asyncio.wait_for(fetcher.fetch_all([candidate(u) for u in urls], "tasks/t1"), 5)
    started = time.monotonic()
    outcomes = asyncio.run(run())
    assert time.monotonic() - started < 5
    return outcomes


def fetch_one(tmp_path: Path, url: str, policy: FetchPolicy = POLICY):
    return fetch_all(tmp_path, [url], policy)[0]


def rejected(outcome, starts: str) -> None:
    assert isinstance(outcome, Rejected), outcome
    assert outcome.reason.startswith(starts), outcome.reason


def test_good_jpeg_is_kept_with_valid_provenance(web, tmp_path):
    outcome = fetch_one(tmp_path, web.add("/good.jpg", encode(picture())))
    assert isinstance(outcome, Kept), outcome
    assert outcome.path == tmp_path / outcome.file and outcome.file == f"tasks/t1/{outcome.sha256}.jpg"
    assert hashlib.sha256(outcome.path.read_bytes()).hexdigest() == outcome.sha256
    assert len(outcome.phash) == 16 and (outcome.width, outcome.height) == (96, 72)
    record = outcome.provenance()
    require("provenance", record)
    assert record["licence"]["id"] == "by" and record["source_url"] == web.url("/good.jpg")
    assert not list(tmp_path.rglob(".*.tmp"))


def test_html_served_as_jpeg_is_not_an_image(web, tmp_path):
    html = b"<!DOCTYPE html><html><head><title>Login</title></head><body>" + b"x" * 2000 + b"</body></html>"
    rejected(fetch_one(tmp_path, web.add("/page.jpg", html, "image/jpeg")), "not an image (html)")


def test_truncated_jpeg_is_undecodable(web, tmp_path):
    data = encode(picture((200, 150)), quality=95)
    rejected(fetch_one(tmp_path, web.add("/cut.jpg", data[: len(data) // 2])), "undecodable jpeg")


def test_zero_bytes(web, tmp_path):
    rejected(fetch_one(tmp_path, web.add("/empty.jpg", b"")), "empty body (0 bytes)")


def test_body_over_the_cap_with_content_length(web, tmp_path):
    rejected(fetch_one(tmp_path, web.add("/big.jpg", b"\xff\xd8\xff" + b"\0" * CAP)), f"too large: > {CAP} bytes")


def test_body_over_the_cap_without_content_length(web, tmp_path):
    def endless(handler):  # HTTP/1.0 style: no length, the body ends when the connection closes
        handler.close_connection = True
        handler.send_response(200)
        handler.send_header("Content-Type", "image/jpeg")
        handler.end_headers()
        handler.wfile.write(b"\xff\xd8\xff")
        for _ in range(40):  # 40 x 16 KiB = 640 KiB, over the 200 kB cap
            handler.wfile.write(b"\0" * 16384)
    web.routes["/stream.jpg"] = endless
    rejected(fetch_one(tmp_path, web.url("/stream.jpg")), f"too large: > {CAP} bytes")


def png_header_bomb(width: int, height: int) -> bytes:
    """A 1-bit PNG of width x height whose rows are all zero: a few kB on the wire."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    compressor = zlib.compressobj(9)
    row = b"\0" * (1 + (width + 7) // 8)
    pixels = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def test_decompression_bomb_is_a_reason_not_a_crash(web, tmp_path):
    bomb = png_header_bomb(20000, 20000)
    assert len(bomb) < CAP
    rejected(fetch_one(tmp_path, web.add("/bomb.png", bomb, "image/png")), "decompression bomb: 400000000 pixels > cap")
    # Under Pillow's own limit but over ours: our cap decides.
    small_cap = FetchPolicy(**{**POLICY.__dict__, "max_pixels": 1_000_000})
    rejected(fetch_one(tmp_path, web.add("/big.png", png_header_bomb(2000, 2000), "image/png"), small_cap),
             "decompression bomb: 4000000 pixels > cap 1000000")


def test_svg_is_not_an_image(web, tmp_path):
    svg = (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="500" height="500">'
           b'<circle r="9"/></svg>')
    rejected(fetch_one(tmp_path, web.add("/logo.svg", svg, "image/svg+xml")), "not an image (svg)")


def test_redirect_loop(web, tmp_path):
    web.redirect("/a", "/b")
    web.redirect("/b", web.url("/a"))
    rejected(fetch_one(tmp_path, web.url("/a")), "redirect loop at")


def test_too_many_redirects(web, tmp_path):
    for hop in range(5):
        web.redirect(f"/hop{hop}", f"/hop{hop + 1}")
    rejected(fetch_one(tmp_path, web.url("/hop0")), "too many redirects (> 3)")


def test_redirect_to_private_address_is_refused_before_connecting(web, tmp_path):
    private = fetch_one(tmp_path, web.redirect("/to-lan", "http://10.0.0.1/admin.jpg"))
    metadata = fetch_one(tmp_path, web.redirect("/to-meta", "http://169.254.169.254/latest/meta-data"))
    scheme = fetch_one(tmp_path, web.redirect("/to-file", "file:///etc/passwd"))
    rejected(private, "redirect to private address 10.0.0.1")
    rejected(metadata, "redirect to link-local address 169.254.169.254")
    rejected(scheme, "redirect to scheme not allowed: file")


def test_loopback_is_refused_unless_the_policy_opts_in(web, tmp_path):
    url = web.add("/local.jpg", encode(picture()))
    strict = FetchPolicy(**{**POLICY.__dict__, "allow_loopback": False})
    rejected(fetch_one(tmp_path, url, strict), "loopback address 127.0.0.1")
    assert web.requests == []  # the guard refused before any byte was sent


def test_host_names_are_resolved_and_checked(web, tmp_path):
    url = web.add("/named.jpg", encode(picture())).replace("127.0.0.1", "localhost")
    strict = FetchPolicy(**{**POLICY.__dict__, "allow_loopback": False})
    rejected(fetch_one(tmp_path, url, strict), "loopback address")
    assert isinstance(fetch_one(tmp_path, url), Kept)  # the same name with loopback allowed


def test_guard_classifies_addresses():
    import ipaddress
    kinds = {a: forbidden_kind(ipaddress.ip_address(a), False) for a in
             ("8.8.8.8", "10.1.2.3", "192.168.0.1", "127.0.0.1", "::1", "169.254.1.1", "fe80::1",
              "100.64.0.1", "0.0.0.0", "::ffff:10.0.0.1", "224.0.0.1")}
    assert kinds == {"8.8.8.8": None, "10.1.2.3": "private", "192.168.0.1": "private", "127.0.0.1": "loopback",
                     "::1": "loopback", "169.254.1.1": "link-local", "fe80::1": "link-local",
                     "100.64.0.1": "reserved", "0.0.0.0": "private", "::ffff:10.0.0.1": "private",
                     "224.0.0.1": "reserved"}


def test_slow_server_trickling_bytes_hits_the_total_timeout(web, tmp_path):
    def trickle(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "image/jpeg")
        handler.send_header("Content-Length", "100000")
        handler.end_headers()
        for _ in range(60):  # one byte every 50 ms: never a read timeout, always past 1 s in total
            handler.wfile.write(b"\xff")
            handler.wfile.flush()
            time.sleep(0.05)
    web.routes["/slow.jpg"] = trickle
    started = time.monotonic()
    rejected(fetch_one(tmp_path, web.url("/slow.jpg")), "total timeout 1s")
    assert time.monotonic() - started < 2.5


def test_wrong_content_type_on_a_good_image_is_kept(web, tmp_path):
    outcome = fetch_one(tmp_path, web.add("/photo", encode(picture(), "PNG"), "text/html; charset=utf-8"))
    assert isinstance(outcome, Kept) and outcome.file.endswith(".png"), outcome


def test_animated_gif_keeps_the_first_frame(web, tmp_path):
    frames = [Image.new("RGB", (40, 30), color) for color in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    outcome = fetch_one(tmp_path, web.add("/anim.gif", data, "image/gif"))
    assert isinstance(outcome, Kept), outcome
    with Image.open(outcome.path) as saved:
        assert saved.mode == "RGB" and getattr(saved, "n_frames", 1) == 1
        assert saved.getpixel((5, 5)) == (255, 0, 0)


def test_cmyk_jpeg_becomes_rgb(web, tmp_path):
    data = encode(Image.new("CMYK", (40, 30), (0, 255, 255, 0)), "JPEG", quality=95)  # red in CMYK
    outcome = fetch_one(tmp_path, web.add("/cmyk.jpg", data))
    assert isinstance(outcome, Kept), outcome
    with Image.open(outcome.path) as saved:
        red, green, blue = saved.getpixel((20, 15))
        assert saved.mode == "RGB" and red > 200 and green < 60 and blue < 60


def test_sixteen_bit_png_is_scaled_not_clipped(web, tmp_path):
    ramp = Image.new("I;16", (64, 32))
    ramp.putdata([x * 1024 for y in range(32) for x in range(64)])  # 0 .. 64512
    outcome = fetch_one(tmp_path, web.add("/deep.png", encode(ramp, "PNG"), "image/png"))
    assert isinstance(outcome, Kept), outcome
    with Image.open(outcome.path) as saved:
        assert saved.mode == "RGB"
        assert [saved.getpixel((x, 0))[0] for x in (0, 32, 63)] == [0, 128, 252]


def test_exif_rotation_is_applied(web, tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: view rotated 90 degrees clockwise
    data = encode(picture((80, 40)), "JPEG", exif=exif.tobytes())
    outcome = fetch_one(tmp_path, web.add("/sideways.jpg", data))
    assert isinstance(outcome, Kept) and (outcome.width, outcome.height) == (40, 80), outcome
    with Image.open(outcome.path) as saved:
        assert saved.size == (40, 80) and saved.getexif().get(0x0112) is None


def test_stored_files_hold_only_the_image(web, tmp_path):
    """On disk: the download without its metadata and what follows the end marker (cases in test_decode.py)."""
    exif = Image.Exif()
    exif[0x013B] = "ARTIST SECRET"
    exif.get_ifd(0x8825).update({1: "N", 2: (52.0, 22.0, 31.0)})  # GPS latitude
    jpeg = encode(picture(seed=2), exif=exif.tobytes(), comment=b"COMMENT SECRET") + b"PK\x03\x04ZIP SECRET"
    text = PngInfo()
    text.add_text("Author", "TEXT SECRET")
    png = encode(picture(seed=5), "PNG", pnginfo=text, exif=exif.tobytes()) + b"TRAILING SECRET"
    outcomes = fetch_all(tmp_path, [web.add("/meta.jpg", jpeg), web.add("/meta.png", png, "image/png")])
    clean = [encode(picture(seed=2)), encode(picture(seed=5), "PNG")]
    for outcome, data, kind, expected in zip(outcomes, (jpeg, png), ("jpeg", "png"), clean):
        assert isinstance(outcome, Kept), outcome
        on_disk = outcome.path.read_bytes()
        assert on_disk == strip_to_image(data, kind) == expected and b"SECRET" not in on_disk
        assert hashlib.sha256(on_disk).hexdigest() == outcome.sha256 == outcome.provenance()["sha256"]
        assert outcome.file == f"tasks/t1/{outcome.sha256}.{'jpg' if kind == 'jpeg' else 'png'}"

def test_alpha_is_composited_on_white(web, tmp_path):
    image = Image.new("RGBA", (40, 30), (0, 0, 0, 0))
    ImageDraw.Draw(image).rectangle([0, 0, 9, 9], fill=(0, 0, 255, 255))
    outcome = fetch_one(tmp_path, web.add("/alpha.png", encode(image, "PNG"), "image/png"))
    with Image.open(outcome.path) as saved:
        assert saved.mode == "RGB" and saved.getpixel((30, 20)) == (255, 255, 255)
        assert saved.getpixel((2, 2)) == (0, 0, 255)


def test_near_and_exact_duplicates_are_dropped_within_a_run(web, tmp_path):
    base = picture((160, 120), seed=1)
    first = web.add("/one.jpg", encode(base, quality=95))
    near = web.add("/near.jpg", encode(base.resize((150, 112)), quality=60))  # smaller and recompressed
    exact = web.add("/again.jpg", encode(base, quality=95))
    other = web.add("/other.jpg", encode(picture((160, 120), seed=4), quality=95))
    kept, near_outcome, exact_outcome, other_outcome = fetch_all(tmp_path, [first, near, exact, other],
                                                                 FetchPolicy(**{**POLICY.__dict__, "concurrency": 1}))
    assert isinstance(kept, Kept) and isinstance(other_outcome, Kept)
    rejected(near_outcome, f"duplicate of {kept.sha256}")
    rejected(exact_outcome, f"duplicate of {kept.sha256}")
    assert len(list((tmp_path / "tasks/t1").iterdir())) == 2


def test_too_small_and_http_errors(web, tmp_path):
    tiny = web.add("/tiny.jpg", encode(picture((12, 12))))
    small, missing = fetch_all(tmp_path, [tiny, web.url("/nothing.jpg")])
    rejected(small, "too small: 12x12 < 16x16")
    rejected(missing, "HTTP 404")
    bad_url, bad_location = fetch_all(tmp_path, ["http://[::1", web.redirect("/bad", "http://[oops/")])
    rejected(bad_url, "bad url")
    rejected(bad_location, "redirect to bad url")


def test_licence_outside_the_policy_is_never_downloaded(web, tmp_path):
    url = web.add("/nc.jpg", encode(picture()))
    async def run():
        async with Fetcher(tmp_path, POLICY) as fetcher:
            return await fetcher.fetch_all([candidate(url, Licence("by-nc", "4.0")), candidate(url, None)], "t")
    nc, unknown = asyncio.run(run())
    rejected(nc, "licence by-nc not allowed")
    rejected(unknown, "unknown licence")
    assert web.requests == []


def test_concurrency_per_host_is_bounded(web, tmp_path):
    def slow_image(index):
        data = encode(picture(seed=index))
        def handler(h):
            time.sleep(0.05)
            h.send_response(200)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
        return handler
    for index in range(12):
        web.routes[f"/img{index}.jpg"] = slow_image(index)
    policy = FetchPolicy(**{**POLICY.__dict__, "per_host": 3, "near_duplicate_bits": -1})
    outcomes = fetch_all(tmp_path, [web.url(f"/img{i}.jpg") for i in range(12)], policy)
    assert all(isinstance(o, Kept) for o in outcomes), outcomes
    assert 1 <= web.max_in_flight <= 3


def test_sniff_names_what_the_bytes_are():
    assert sniff(b"\xff\xd8\xff\xe0") == "jpeg" and sniff(b"RIFF\0\0\0\0WEBPVP8 ") == "webp"
    assert sniff(b"  <html>") == "html" and sniff(b'{"error": 1}') == "json" and sniff(b"%PDF-1.7") == "pdf"
    assert sniff(b"") == "empty" and sniff(b"\0\0\0\x1cftypavif") == "avif/heic"


def test_folder_files_are_read_only_for_the_folder_provider(tmp_path):
    source = tmp_path / "img.png"
    picture().save(source)
    local = Candidate(url=source.as_uri(), page_url=None, title=None, provider="folder", licence=CC_BY)
    spoofed = Candidate(url=source.as_uri(), page_url=None, title=None, provider="ddgs", licence=CC_BY)
    async def run():
        async with Fetcher(tmp_path / "run", POLICY) as fetcher:
            return await fetcher.fetch_all([local, spoofed], "t")
    kept, refused = asyncio.run(run())
    assert isinstance(kept, Kept) and kept.provenance()["source_url"] is None
    require("provenance", kept.provenance())
    rejected(refused, "scheme not allowed: file")


def test_bad_policy_values_name_the_field():
    with pytest.raises(ValueError, match="^max_bytes: must be at least 1"):
        FetchPolicy(max_bytes=0)
    with pytest.raises(ValueError, match="^total_timeout: "):
        FetchPolicy(total_timeout=0)


def test_a_failed_write_rejects_that_image_with_the_reason_and_keeps_the_others(web, tmp_path, monkeypatch):
    """Writes run in a worker thread after the claim: a failure there is a reason, never an escaped error."""
    real_write, calls = fetch_module.write_atomically, []

    def flaky(path, data, **options):
        calls.append(path)
        if len(calls) == 1:
            raise OSError(28, "No space left on device")
        if len(calls) == 2:
            raise ValueError("something no step expects")
        return real_write(path, data, **options)

    monkeypatch.setattr(fetch_module, "write_atomically", flaky)
    urls = [web.add(f"/w{n}.jpg", encode(picture(seed=n))) for n in range(3)]
    first, second, third = fetch_all(tmp_path, urls)
    rejected(first, "cannot write: No space left on device")
    rejected(second, "unexpected error: ValueError: something no step expects")
    assert isinstance(third, Kept) and third.path.is_file()
