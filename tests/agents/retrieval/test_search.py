"""Search providers parse recorded responses (documented API shapes in tests/agents/retrieval/data/).

Openverse is served by a local HTTP server on 127.0.0.1; ddgs has its own HTTP client call
(`ddgs.http_client.HttpClient.request`) swapped for the recorded answers. No test reaches the internet.
"""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import ddgs.http_client
import pytest
from PIL import Image, ImageDraw

from agents.retrieval.fetch import Fetcher, FetchPolicy, Kept
from agents.retrieval.search import SearchSettings, search_images
from agents.retrieval.search.ddgs_images import pick_filter
from schemas.licences import LicencePolicy
from schemas.schema_check import require

DATA = Path(__file__).parent / "data"


class OpenverseStandIn:
    """Answers /v1/images/ with a recorded page (or a status), and keeps each request's query."""

    def __init__(self, status: int = 200):
        self.status = status
        self.queries: list[dict] = []
        body = (DATA / "openverse_images.json").read_bytes()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                stand_in.queries.append(parse_qs(urlsplit(self.path).query))
                payload = body if stand_in.status == 200 else b'{"detail": "throttled"}'
                self.send_response(stand_in.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1/images/"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def openverse():
    stand_in = OpenverseStandIn()
    yield stand_in
    stand_in.close()


@pytest.fixture
def ddgs_wire(monkeypatch):
    """ddgs's HTTP client answers from recordings; every call it makes is kept in `calls`."""
    calls = []

    def request(self, method, url, **kwargs):
        calls.append((method, url, kwargs.get("params") or {}))
        if url == "https://duckduckgo.com":
            text = (DATA / "ddgs_home.html").read_text()
        elif url == "https://duckduckgo.com/i.js":
            text = (DATA / "ddgs_images.json").read_text()
        else:
            raise AssertionError(f"unexpected request to {url}")
        return ddgs.http_client.Response(SimpleNamespace(status_code=200, content=text.encode(), text=text))

    monkeypatch.setattr(ddgs.http_client.HttpClient, "request", request)
    return calls


def search(*args, **kwargs):
    return asyncio.run(search_images(*args, **kwargs))


def test_openverse_parses_per_image_licences(openverse):
    result = search("brass gear", 10, LicencePolicy(), providers=["openverse"],
                    settings=SearchSettings(openverse_url=openverse.url))
    assert [c.title for c in result.candidates] == ["Brass gear wheel", "Gearbox, opened", "Old gears"]
    first = result.candidates[0]
    assert first.url == "https://live.staticflickr.com/1282/5136544339_f5e4d5a0e4_b.jpg"
    assert first.page_url == "https://www.flickr.com/photos/example/5136544339"
    assert (first.width, first.height, first.creator, first.source) == (1024, 683, "Jane Maker", "flickr")
    assert first.licence.record() == {"id": "by", "version": "2.0", "verified": True, "filter": None,
                                      "url": "https://creativecommons.org/licenses/by/2.0/"}
    assert first.attribution.startswith('"Brass gear wheel" by Jane Maker')
    assert [c.licence.id for c in result.candidates] == ["by", "by-sa", "pdm"]
    # The index returned NC and sampling+ anyway: both refused here, with reasons.
    assert sorted(reason.split(" (")[0] for _, reason in result.refused) == ["licence by-nc not allowed",
                                                                            "unknown licence"]
    query = openverse.queries[0]
    assert query["q"] == ["brass gear"] and query["license"] == ["by,by-sa,cc0,pdm"]
    assert query["page_size"] == ["10"] and query["page"] == ["1"]


def test_openverse_with_non_commercial_allowed(openverse):
    result = search("gear", 10, LicencePolicy.default(non_commercial=True), providers=["openverse"],
                    settings=SearchSettings(openverse_url=openverse.url))
    assert "by-nc" in [c.licence.id for c in result.candidates]
    assert "by-nc" in openverse.queries[0]["license"][0].split(",")


def test_count_limits_what_is_kept(openverse):
    settings = SearchSettings(openverse_url=openverse.url)
    result = search("gear", 2, LicencePolicy(), providers=["openverse"], settings=settings)
    assert len(result.candidates) == 2


def test_ddgs_records_its_licence_filter_as_unverified(ddgs_wire):
    policy = LicencePolicy(accept_unverified=True)
    result = search("brass gear", 5, policy, providers=["ddgs"])
    assert [c.url for c in result.candidates] == ["https://upload.wikimedia.org/wikipedia/commons/5/5e/Brass_gear.jpg",
                                                  "https://pixabay.example/photo/gears-123.png"]
    first = result.candidates[0]
    assert first.provider == "ddgs" and first.page_url == "https://commons.wikimedia.org/wiki/File:Brass_gear.jpg"
    assert (first.width, first.height) == (1440, 1080)
    assert first.licence.record() == {"id": "by-sa", "version": None, "url": None, "verified": False,
                                      "filter": "license:ModifyCommercially"}
    search_call = [params for _, url, params in ddgs_wire if url.endswith("/i.js")][0]
    assert search_call["f"].endswith("license:ModifyCommercially") and search_call["q"] == "brass gear"


def test_ddgs_is_not_even_asked_when_unverified_licences_are_refused(ddgs_wire):
    result = search("brass gear", 5, LicencePolicy(), providers=["ddgs"])
    assert result.candidates == [] and ddgs_wire == []


def test_ddgs_filter_follows_the_policy():
    assert pick_filter(LicencePolicy()) == ("ModifyCommercially", "by-sa")
    assert pick_filter(LicencePolicy.default(non_commercial=True)) == ("Modify", "by-nc-sa")
    assert pick_filter(LicencePolicy(frozenset({"cc0", "pdm"}))) == ("Public", "pdm")
    assert pick_filter(LicencePolicy(frozenset({"by"}))) is None


def make_folder(root: Path, lines: list[dict]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for index, line in enumerate(lines):  # different shapes, so perceptual hashes differ
        image = Image.new("RGB", (48, 40), (40 * index, 120, 200 - 30 * index))
        ImageDraw.Draw(image).rectangle([4 + 14 * index, 2, 12 + 14 * index, 38 - 9 * index], fill=(250, 250, 20))
        image.save(root / line["file"])
    (root / "licenses.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return root


FOLDER_LINES = [
    {"file": "ruler.png", "licence": "CC0 1.0", "creator": "Ann", "title": "a steel ruler"},
    {"file": "gear.png", "licence": "CC BY-SA 4.0", "creator": "Bob", "page_url": "https://example.org/gear",
     "title": "brass gear wheel"},
    {"file": "poster.png", "licence": "All rights reserved", "creator": "Cy", "title": "gear poster"},
]


def test_folder_ranks_by_query_words_and_refuses_unknown_licences(tmp_path):
    folder = make_folder(tmp_path / "images", FOLDER_LINES)
    result = search("brass gear", 5, providers=["folder"], settings=SearchSettings(folder=folder))
    assert [Path(c.url).name for c in result.candidates] == ["gear.png", "ruler.png"]
    gear = result.candidates[0]
    assert gear.licence.id == "by-sa" and gear.licence.version == "4.0" and gear.page_url == "https://example.org/gear"
    assert [(c.title, reason) for c, reason in result.refused] == [("gear poster", "unknown licence")]


def test_providers_are_tried_in_order_until_enough(tmp_path, openverse):
    folder = make_folder(tmp_path / "images", FOLDER_LINES)
    settings = SearchSettings(openverse_url=openverse.url, folder=folder)
    result = search("gear", 4, providers=["openverse", "folder"], settings=settings)
    assert [c.provider for c in result.candidates] == ["openverse"] * 3 + ["folder"]
    openverse.status = 429
    result = search("gear", 2, providers=["openverse", "folder"], settings=settings)
    assert [c.provider for c in result.candidates] == ["folder", "folder"]
    assert result.problems and result.problems[0].startswith("openverse: HTTP 429")


def test_folder_search_then_fetch_writes_valid_provenance(tmp_path):
    folder = make_folder(tmp_path / "images", FOLDER_LINES)
    result = search("gear", 5, providers=["folder"], settings=SearchSettings(folder=folder))

    async def fetch():
        async with Fetcher(tmp_path / "run", FetchPolicy(min_width=16, min_height=16)) as fetcher:
            return await fetcher.fetch_all(result.candidates, "tasks/itmr/0001")
    outcomes = asyncio.run(fetch())
    assert all(isinstance(o, Kept) for o in outcomes), outcomes
    for outcome in outcomes:
        require("provenance", outcome.provenance())
        assert (tmp_path / "run" / outcome.file).is_file()


def test_bad_input_is_one_line_naming_the_field(tmp_path):
    with pytest.raises(ValueError, match="^providers: unknown provider 'bing'"):
        search("gear", 3, providers=["bing"])
    with pytest.raises(ValueError, match="^count: "):
        search("gear", 0)
    with pytest.raises(ValueError, match="^query: "):
        search("  ", 3)
    (tmp_path / "licenses.jsonl").write_text('{"licence": "cc0"}\n')
    with pytest.raises(ValueError, match=r"licenses.jsonl:1: file: missing$"):
        search("gear", 3, providers=["folder"], settings=SearchSettings(folder=tmp_path))
    (tmp_path / "licenses.jsonl").write_text('{"file": "../secret.png", "licence": "cc0"}\n')
    with pytest.raises(ValueError, match="is outside the folder"):
        search("gear", 3, providers=["folder"], settings=SearchSettings(folder=tmp_path))


def test_skipped_urls_are_read_past_not_counted(tmp_path, openverse):
    """A slot skips URLs tried before or taken by other slots, and still gets `count` new ones."""
    folder = make_folder(tmp_path / "images", FOLDER_LINES)
    gear = (folder / "gear.png").resolve().as_uri()
    result = search("brass gear", 1, providers=["folder"], settings=SearchSettings(folder=folder), skip={gear})
    assert [Path(c.url).name for c in result.candidates] == ["ruler.png"]
    first = "https://live.staticflickr.com/1282/5136544339_f5e4d5a0e4_b.jpg"
    result = search("brass gear", 1, providers=["openverse"], settings=SearchSettings(openverse_url=openverse.url),
                    skip={first})
    assert [c.title for c in result.candidates] == ["Gearbox, opened"]
    assert openverse.queries[0]["page_size"] == ["2"]  # one wanted plus one to read past
