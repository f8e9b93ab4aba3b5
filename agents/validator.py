"""Validator agent (a Qwen2-VL-class VLM): does this image show what the slot asks for?"""

from __future__ import annotations

from dataclasses import dataclass

from agents.ask import ask_json
from agents.backends.chat import ChatModel, SamplingParams
from agents.planner import safe_text

VERDICT_SCHEMA = {
    "title": "verdict", "type": "object", "additionalProperties": False, "required": ["verdict", "reason"],
    "properties": {"verdict": {"enum": ["yes", "no"]}, "reason": safe_text(80)},
}


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str
    model: str

    def as_record(self) -> dict:
        return {"verdict": "yes" if self.ok else "no", "reason": self.reason, "model": self.model}


def validator_messages(image_path: str, description: str, role: str) -> list[dict]:
    purpose = {"correct": "the correct answer", "distractor": "a plausible but wrong option",
               "condition": "the current state"}.get(role, "an option")
    return [
        {"role": "system", "content": "You check images for a visual reasoning benchmark. You reply with JSON only."},
        {"role": "user", "content": [
            {"type": "image", "path": image_path},
            {"type": "text", "text": (
                f"This image will be used as {purpose}. It must show: {description}\n"
                "Answer yes only if the image clearly shows this, is a photo or clear illustration, and has no "
                "watermark or large text. Give a short reason.")},
        ]},
    ]


async def check_image(model: ChatModel, *, image_path: str, description: str, role: str,
                      params: SamplingParams, repair_attempts: int = 2) -> Verdict:
    reply = await ask_json(model, validator_messages(image_path, description, role), VERDICT_SCHEMA, params,
                           stage="validate", repair_attempts=repair_attempts)
    return Verdict(ok=reply["verdict"] == "yes", reason=reply["reason"], model=model.model_id)
