"""Keyword agent (a Qwen2-VL-class model): the task's open image slots -> image-search queries.

One call covers every slot still looking for an image, so the agent sees the whole task: the
queries for the correct image and for its distractors can differ on purpose, and a task costs
one keywords call per search round instead of one per image (8 fewer calls for a 3-step task,
about a third of the pipeline's HTTP work at 200 ms a call). On a refine round each slot also
shows what was tried and why it failed, so the agent searches differently instead of repeating.
"""

from __future__ import annotations

from agents.ask import ask_json
from agents.backends.chat import ChatModel, SamplingParams
from agents.planner import safe_text

QUERIES = {"type": "array", "minItems": 1, "maxItems": 3, "items": safe_text(40, 2)}


def keywords_schema(count: int) -> dict:
    """One {"queries": [...]} per slot, in the order the prompt lists them."""
    slot = {"type": "object", "additionalProperties": False, "required": ["queries"],
            "properties": {"queries": QUERIES}}
    return {"title": "keywords", "type": "object", "additionalProperties": False, "required": ["slots"],
            "properties": {"slots": {"type": "array", "items": slot, "minItems": count, "maxItems": count}}}


def keyword_messages(task_title: str, slots: list[dict]) -> list[dict]:
    lines = []
    for number, slot in enumerate(slots, start=1):
        lines.append(f"Image {number}: {slot['description']}")
        if slot["tried"]:
            lines.append("  Earlier searches for it failed: "
                         + "; ".join(f"{t['query']!r}: {t['outcome']}" for t in slot["tried"][-4:])
                         + ". Search differently.")
    return [
        {"role": "system", "content": "You write short image-search queries. You reply with JSON only."},
        {"role": "user", "content": (
            f"Task: {task_title}\nFind a photo for each image below.\n" + "\n".join(lines) + "\n"
            f"For each of the {len(slots)} images, in order, give 1 to 3 queries of 2 to 6 plain words, "
            "most specific first, as a photo search engine would understand them.")},
    ]


async def write_queries(model: ChatModel, *, task_title: str, slots: list[dict], params: SamplingParams,
                        repair_attempts: int = 2) -> list[list[str]]:
    """Queries for each slot ({"description", "tried"}), in order; AgentError(stage='keywords') otherwise."""
    reply = await ask_json(model, keyword_messages(task_title, slots), keywords_schema(len(slots)), params,
                           stage="keywords", repair_attempts=repair_attempts)
    return [[q.strip() for q in item["queries"] if q.strip()] or [slot["description"][:40]]
            for item, slot in zip(reply["slots"], slots)]
