"""The one error type of ImageChain data code, and its one-line form on the command line."""

from __future__ import annotations

import json
from pathlib import Path

from vischain.errors import fail  # noqa: F401  (one `error:` line for both command lines)


class DataError(ValueError):
    """Bad data or bad input: a missing folder, a field, a flag. The message names which."""


def read_json(path: str | Path, what: str = "file"):
    """The JSON value in `path`; a DataError naming the file when it is missing or not JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: {what} not found") from None
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: not JSON: {err}") from None


class StoryTooLong(DataError):
    """A rendered story does not fit the model's context. Never truncated: raised, or skipped and counted."""

    def __init__(self, story_id: str, length: int, max_length: int):
        self.story_id, self.length, self.max_length = story_id, length, max_length
        super().__init__(f"story {story_id!r} is {length} tokens, over the context length {max_length}")
