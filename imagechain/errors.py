"""A story that does not fit the model's context: never truncated, raised or skipped and counted."""

from __future__ import annotations

from schemas.errors import DataError


class StoryTooLong(DataError):
    """A rendered story does not fit the model's context. Never truncated: raised, or skipped and counted."""

    def __init__(self, story_id: str, length: int, max_length: int):
        self.story_id, self.length, self.max_length = story_id, length, max_length
        super().__init__(f"story {story_id!r} is {length} tokens, over the context length {max_length}")
