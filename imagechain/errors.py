"""The one error type of ImageChain data code, and its one-line form on the command line."""

from __future__ import annotations

from vischain.errors import fail  # noqa: F401  (one `error:` line for both command lines)


class DataError(ValueError):
    """Bad data or bad input: a missing folder, a field, a flag. The message names which."""


class StoryTooLong(DataError):
    """A rendered story does not fit the model's context. Never truncated: raised, or skipped and counted."""

    def __init__(self, story_id: str, length: int, max_length: int):
        self.story_id, self.length, self.max_length = story_id, length, max_length
        super().__init__(f"story {story_id!r} is {length} tokens, over the context length {max_length}")
