"""Session fixtures: tiny random-weight models built once, small images drawn in the test."""

from __future__ import annotations

import os

# Nothing may reach a model hub: set before transformers or huggingface_hub is imported anywhere.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """name -> folder of each tiny model; `tiny:NAME` ids resolve to the same folders."""
    from agents.backends.tiny_models import ensure_tiny_models

    cache = os.environ.get("VISCHAIN_TEST_CACHE") or str(tmp_path_factory.mktemp("vischain-cache"))
    os.environ["VISCHAIN_CACHE"] = cache
    return ensure_tiny_models()


def draw_image(path, size=(64, 48), color=(200, 40, 40), text=None):
    image = Image.new("RGB", size, color)
    draw = ImageDraw.Draw(image)
    draw.rectangle([size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2], fill=(255 - color[0], 90, 200))
    if text:
        draw.text((2, 2), text, fill=(255, 255, 255))
    image.save(path)
    return str(path)


@pytest.fixture
def images(tmp_path):
    """Three small distinct PNG files of different sizes."""
    return [
        draw_image(tmp_path / "a.png", (64, 48), (200, 40, 40), "a"),
        draw_image(tmp_path / "b.png", (40, 64), (40, 200, 40), "b"),
        draw_image(tmp_path / "c.png", (32, 32), (40, 40, 200), "c"),
    ]


@pytest.fixture(scope="session")
def drawn_image_folder(tmp_path_factory):
    """150 distinct 256x256 CC0 drawings with a licenses.jsonl: a search folder that rarely runs dry."""
    from benchmark_data.drawings import write_demo_images

    folder = tmp_path_factory.mktemp("drawn-images")
    write_demo_images(folder, count=150)
    return folder


@pytest.fixture(scope="session")
def postgres(tmp_path_factory):
    """A real PostgreSQL server for the session (tests/postgres.py); fails, never skips, without one."""
    from tests.postgres import PostgresServer

    try:
        server = PostgresServer(tmp_path_factory.mktemp("postgres")).start()
    except (RuntimeError, OSError) as err:
        pytest.fail(str(err))
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def run_db_factory(request, tmp_path):
    """open() -> a new connection to one run database, for each store kind: the same tests run on both."""
    from schemas.run_db import open_run_db

    if request.param == "sqlite":
        return lambda: open_run_db(None, tmp_path / "claims.sqlite")
    server = request.getfixturevalue("postgres")
    schema = f"run_{request.node.name.split('[')[0][-20:].lower()}_{os.getpid()}"
    schema = "".join(c if c.isalnum() or c == "_" else "_" for c in schema)
    return lambda: open_run_db(server.url, schema=schema)
