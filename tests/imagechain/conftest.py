"""Fixtures for every ImageChain test below this folder; the data they make is in story_fixtures.py."""

from pathlib import Path

import pytest

from tests.imagechain.story_fixtures import write_run_dir, write_storyframes_dir


@pytest.fixture(scope="session")
def storyframes_dir(tmp_path_factory) -> Path:
    """A StoryFrames-shaped dataset (story_fixtures.STORYFRAMES_LAYOUT), made once per session."""
    return write_storyframes_dir(tmp_path_factory.mktemp("StoryFrames"))


@pytest.fixture
def run_dir(tmp_path) -> Path:
    """runs/eng: two ITMR tasks, one IOMR task and one ICIR task (which gives no story)."""
    return write_run_dir(tmp_path)
