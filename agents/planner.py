"""Planner agent (a Llama-3.3-class LLM): seed topic -> task skeleton (schemas/plan.schema.json).

The request schema is the plan schema narrowed to one task kind, so constrained decoding (xgrammar
in-process, guided decoding on vLLM) can only produce a skeleton of the right shape: the kind is a
constant and the image roles of each step are fixed by position:

    itmr, icir   [correct, distractor, distractor(, distractor)]
    iomr         [condition, correct, distractor(, distractor)]

Free text is printable ASCII without `"` and `\\`: byte-level tokens from a weak model can otherwise
form broken UTF-8, and xgrammar emits pattern characters raw inside the JSON string, so a quote or
backslash there would end the string or start a bad escape. Lengths are bounded inside the regex
(`{3,90}`): xgrammar 0.2.8 ignores minLength/maxLength beside a pattern. The bounds come from a
`PlanShape`, so a demo profile can ask for short plans: a random-weight model writes every string
to its maximum, about 35 characters a second on 2 CPU cores.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from agents.ask import AgentError, ask_json
from agents.backends.chat import ChatModel, SamplingParams
from schemas.schema_check import require
from schemas.task import Plan

KIND_GUIDE = {
    "itmr": "image-text multi-turn: each step asks a question in words; the user answers by choosing the one "
            "image that shows the right next action or object. Later steps only make sense after earlier ones.",
    "icir": "in-context image-only: each step states a rule-governed choice (the same kind of choice every step); "
            "the first steps are solved examples, the later ones are asked. The user picks the matching image.",
    "iomr": "image-only multi-turn: no words are shown to the user. Each step shows a condition image (the current "
            "state); the user picks the image of the correct next state. Step k+1's condition is the state after "
            "step k's correct choice. initial_scene_description describes the starting state image.",
}

PRINCIPLES = """Follow the three principles of a good multi-step visual task:
1. Multi-step necessity: every step depends on the one before; no step can be answered alone.
2. Plausible distractors: wrong images show the same kind of thing (same tools, same scene) and look
   similar, but are wrong for this step.
3. Visual feasibility: every image is a concrete, photographable scene or object that an image search
   could find; no diagrams of ideas, no text, no abstract concepts."""


REJECTED = "topic rejected by the planner"
"""How a planner's rejection starts in failures.jsonl: a profile may allow it (planner_may_reject)."""

SAFE_CHARS = "[ !#-\\[\\]-~]"  # printable ASCII minus " and \\


def safe_text(max_length: int, min_length: int = 3) -> dict:
    """A JSON Schema string of SAFE_CHARS, `min_length` to `max_length` long, that xgrammar enforces."""
    return {"type": "string", "pattern": f"^{SAFE_CHARS}{{{min_length},{max_length}}}$"}


@dataclass(frozen=True)
class PlanShape:
    """How big a plan may be; the profile's `generate.plan_shape` overrides any field."""

    min_steps: int = 2
    """Fewest steps: one step is no chain."""
    max_steps: int = 4
    """Most steps; VisChainBench tasks have 2 to 6."""
    min_distractors: int = 2
    """Fewest wrong images per step (VisChainBench shows 3 to 4 choices)."""
    max_distractors: int = 3
    """Most wrong images per step."""
    title_chars: int = 60
    """Longest title."""
    opening_chars: int = 200
    """Longest initial_scene_description."""
    question_chars: int = 150
    """Longest question (ITMR, ICIR)."""
    scene_chars: int = 150
    """Longest scene_description (the ImageChain scene text of the correct image)."""
    image_chars: int = 90
    """Longest image description, the text keywords and the painter start from."""
    max_images: int | None = None
    """Most images in one task, the IOMR start image included (VisChainBench: up to 27); None: only steps
    and distractors bound it. The planner is told; a plan over it loses distractors (`fit_image_budget`)."""

    @classmethod
    def from_dict(cls, data: dict | None, where: str = "generate.plan_shape") -> "PlanShape":
        known = {f.name for f in fields(cls)}
        for key, value in (data or {}).items():
            if key not in known:
                raise ValueError(f"{where}.{key}: unknown field; known: {', '.join(sorted(known))}")
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{where}.{key}: must be a positive integer, got {value!r}")
        shape = cls(**(data or {}))
        if shape.min_steps > shape.max_steps or shape.min_distractors > shape.max_distractors:
            raise ValueError(f"{where}: min_steps/min_distractors must not exceed max_steps/max_distractors")
        # Dropping distractors must be able to bring any plan of max_steps under the budget.
        fewest = 1 + shape.max_steps * (2 + shape.min_distractors)
        if shape.max_images is not None and shape.max_images < fewest:
            raise ValueError(f"{where}.max_images: {shape.max_images} is under {fewest}, the images of an IOMR "
                             f"task of max_steps {shape.max_steps} with min_distractors {shape.min_distractors}")
        return shape

    def largest_task(self) -> int:
        """Images in the largest task this shape admits: what a server must accept in one prompt."""
        largest = max(self.max_steps * (1 + self.max_distractors),     # itmr, icir: every step's choices
                      1 + self.max_steps * (2 + self.max_distractors))  # iomr: start, then condition + options
        return min(largest, self.max_images) if self.max_images is not None else largest


def _slot(role: str, shape: PlanShape) -> dict:
    return {"type": "object", "additionalProperties": False, "required": ["role", "description"],
            "properties": {"role": {"const": role}, "description": safe_text(shape.image_chars)}}


def plan_request_schema(kind: str, may_reject: bool, shape: PlanShape = PlanShape()) -> dict:
    fixed = ["condition", "correct"] if kind == "iomr" else ["correct"]
    images = {"type": "array", "prefixItems": [_slot(role, shape) for role in fixed],
              "items": _slot("distractor", shape),
              "minItems": len(fixed) + shape.min_distractors, "maxItems": len(fixed) + shape.max_distractors}
    question = safe_text(shape.question_chars, 0 if kind == "iomr" else 3)
    step = {"type": "object", "additionalProperties": False,
            "required": ["question", "scene_description", "images"],
            "properties": {"question": question, "scene_description": safe_text(shape.scene_chars),
                           "images": images}}
    plan = {"type": "object", "additionalProperties": False,
            "required": ["task_kind", "title", "initial_scene_description", "steps"],
            "properties": {"task_kind": {"const": kind}, "title": safe_text(shape.title_chars),
                           "initial_scene_description": safe_text(shape.opening_chars),
                           "steps": {"type": "array", "items": step, "minItems": shape.min_steps,
                                     "maxItems": shape.max_steps}}}
    if not may_reject:
        return {"title": "plan", **plan}
    rejection = {"type": "object", "additionalProperties": False, "required": ["rejected", "reason"],
                 "properties": {"rejected": {"const": True}, "reason": safe_text(shape.question_chars)}}
    return {"title": "plan", "anyOf": [plan, rejection]}


def planner_messages(domain: str, topic: str, kind: str, may_reject: bool,
                     shape: PlanShape = PlanShape()) -> list[dict]:
    reject = ('If the topic has no clear visual form or no real multi-step dependency, reply '
              '{"rejected": true, "reason": "..."} instead of a plan.\n') if may_reject else ""
    budget = ""
    if shape.max_images is not None:
        start = ", the starting image included" if kind == "iomr" else ""
        budget = f"Use at most {shape.max_images} images in all{start}.\n"
    return [
        {"role": "system", "content": "You design multi-step visual reasoning tasks for a benchmark. "
                                      "You reply with JSON only."},
        {"role": "user", "content": (
            f"Domain: {domain}\nTopic: {topic}\nTask kind: {kind} ({KIND_GUIDE[kind]})\n\n{PRINCIPLES}\n\n"
            f"Write {shape.min_steps} to {shape.max_steps} steps. For each step give the question, "
            "a one-sentence scene_description of what the "
            "correct image shows (it will also serve as one sentence of a story), and the image slots in order, "
            "each with a visual description precise enough to search for or to paint.\n" + budget + reject)},
    ]


def image_count(plan: dict) -> int:
    """Images a plan needs: every step's images, and the IOMR start image."""
    return (plan["task_kind"] == "iomr") + sum(len(step["images"]) for step in plan["steps"])


def fit_image_budget(plan: dict, shape: PlanShape) -> dict:
    """The plan within shape.max_images: distractors dropped one at a time, each from the step with the
    most (the latest of equals), never under min_distractors. PlanShape.from_dict makes sure that suffices."""
    if shape.max_images is None or image_count(plan) <= shape.max_images:
        return plan
    steps = [{**step, "images": list(step["images"])} for step in plan["steps"]]
    while (plan["task_kind"] == "iomr") + sum(len(step["images"]) for step in steps) > shape.max_images:
        distractors = [sum(image["role"] == "distractor" for image in step["images"]) for step in steps]
        most = max(range(len(steps)), key=lambda i: (distractors[i], i))
        if distractors[most] <= shape.min_distractors:
            break  # a shape that passed from_dict never gets here; the plan schema check still applies
        images = steps[most]["images"]
        last = max(i for i, image in enumerate(images) if image["role"] == "distractor")
        steps[most]["images"] = images[:last] + images[last + 1:]
    return {**plan, "steps": steps}


async def write_plan(model: ChatModel, *, domain: str, topic: str, kind: str, params: SamplingParams,
                     may_reject: bool = True, repair_attempts: int = 2, shape: PlanShape = PlanShape()) -> Plan:
    """A plan that validates against schemas/plan.schema.json; AgentError(stage='plan') otherwise."""
    reply = await ask_json(model, planner_messages(domain, topic, kind, may_reject, shape),
                           plan_request_schema(kind, may_reject, shape), params, stage="plan",
                           repair_attempts=repair_attempts)
    if reply.get("rejected"):
        raise AgentError("plan", f"{REJECTED}: {reply['reason']}")
    plan = fit_image_budget({"topic": topic, **reply}, shape)
    require("plan", plan, "plan")
    return plan
