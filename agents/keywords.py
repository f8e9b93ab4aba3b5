"""Keyword agent (a Qwen2-VL-class model): image slot description -> image-search queries.

On a refine round the agent also sees what was tried and why each image was rejected, so it can
search differently (broader, narrower, other words) instead of repeating itself.
"""

from __future__ import annotations

from agents.ask import ask_json
from agents.planner import safe_text
from agents.backends.chat import ChatModel, GenerationParams

KEYWORDS_SCHEMA = {
    "title": "keywords", "type": "object", "additionalProperties": False, "required": ["queries"],
    "properties": {"queries": {"type": "array", "minItems": 1, "maxItems": 3,
                               "items": safe_text(40, 2)}},
}


def keyword_messages(description: str, task_title: str, tried: list[dict]) -> list[dict]:
    history = ""
    if tried:
        lines = [f"- {t['query']!r}: {t['outcome']}" for t in tried[-6:]]
        history = "Earlier searches for this image failed:\n" + "\n".join(lines) + "\nSearch differently.\n"
    return [
        {"role": "system", "content": "You write short image-search queries. You reply with JSON only."},
        {"role": "user", "content": (
            f"Task: {task_title}\nThe image must show: {description}\n{history}"
            "Give 1 to 3 queries of 2 to 6 plain words each, most specific first, "
            "as a photo search engine would understand them.")},
    ]


async def write_queries(model: ChatModel, *, description: str, task_title: str, tried: list[dict],
                        params: GenerationParams, repair_attempts: int = 2) -> list[str]:
    reply = await ask_json(model, keyword_messages(description, task_title, tried), KEYWORDS_SCHEMA, params,
                           stage="keywords", repair_attempts=repair_attempts)
    return [q.strip() for q in reply["queries"] if q.strip()] or [description[:60]]
