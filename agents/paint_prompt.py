"""Paint-prompt agent (a Qwen2-VL-class model): a slot that retrieval could not fill -> a text-to-image prompt.

VisChainBench paints its last-resort images "via Qwen model-driven prompt engineering": the VLM,
not a template, writes what the diffusion model is asked for. The agent sees what the image must
show, the task it belongs to (title, the step's question) and why earlier candidates were rejected,
retrieved photos and earlier paintings alike, so a repaint is asked for differently instead of
repeating the prompt that failed.

    prompt = await write_paint_prompt(model, description=..., role="distractor", task_title=...,
                                      step_text=..., rejections=[...], params=..., max_chars=300)
"""

from __future__ import annotations

from agents.ask import ask_json
from agents.backends.chat import ChatModel, SamplingParams
from agents.planner import safe_text

REJECTIONS_SHOWN = 4
"""The most recent rejections the prompt lists; older ones add length, not new information."""

PURPOSE = {"correct": "the correct answer", "distractor": "a plausible but wrong option",
           "condition": "the current state of the task"}


def paint_prompt_schema(max_chars: int) -> dict:
    return {"title": "paint_prompt", "type": "object", "additionalProperties": False, "required": ["prompt"],
            "properties": {"prompt": safe_text(max_chars)}}


def paint_prompt_messages(*, description: str, role: str, task_title: str, step_text: str,
                          rejections: list[str], max_chars: int) -> list[dict]:
    lines = [f"Task: {task_title}"]
    if step_text:
        lines.append(f"This step: {step_text}")
    lines.append(f"The picture will be used as {PURPOSE.get(role, 'an option')}. It must show: {description}")
    if rejections:
        lines.append("Earlier pictures for it were rejected: " + "; ".join(rejections[-REJECTIONS_SHOWN:])
                     + ". Ask for a picture that avoids these problems.")
    lines.append(f"Write one text-to-image prompt of at most {max_chars} characters: the subject, the setting, "
                 "the view and a realistic photographic style. The picture must contain no text, letters or "
                 "watermark.")
    return [
        {"role": "system", "content": "You write prompts for a text-to-image model that paints pictures for a "
                                      "visual reasoning benchmark. You reply with JSON only."},
        {"role": "user", "content": "\n".join(lines)},
    ]


async def write_paint_prompt(model: ChatModel, *, description: str, role: str, task_title: str, step_text: str,
                             rejections: list[str], params: SamplingParams, max_chars: int,
                             repair_attempts: int = 2) -> str:
    """The prompt, stripped; AgentError(stage='paint') when the model cannot write a valid one."""
    messages = paint_prompt_messages(description=description, role=role, task_title=task_title,
                                     step_text=step_text, rejections=rejections, max_chars=max_chars)
    reply = await ask_json(model, messages, paint_prompt_schema(max_chars), params, stage="paint",
                           repair_attempts=repair_attempts)
    return reply["prompt"].strip() or description
