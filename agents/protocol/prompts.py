"""Every text the evaluation protocol sends to a model, in one place.

The exact VisChainBench prompt strings are not public (see shared/notes/vischainbench-format.md), so
these are ours. Their hash goes with every answer: change a word here and earlier answers no longer
count as the same experiment (`vischain eval` re-asks instead of mixing the two).

Placeholders in braces are filled by agents/protocol.py with `str.format`.
"""

from __future__ import annotations

import hashlib
import json

PROMPTS: dict[str, str] = {
    # The answer format the paper enforces: one `ANSWER: <label>` line, no markdown.
    "answer_format": (
        "Reply with exactly one line of the form ANSWER: <{label_kind}>, where <{label_kind}> is the "
        "{label_kind} drawn in the top-left corner of the image you choose. No markdown."
    ),
    "itmr_intro": (
        "You are helping someone through a task one step at a time. At each step you get a question and "
        "candidate images, each with a number drawn in its top-left corner. Choose the image that answers "
        "the question, keeping in mind the earlier steps.\n\nScene: {scene}"
    ),
    "itmr_question": "Step {index}. {task_description}\nQuestion: {question}",
    "icir_intro": (
        "Each step names what to find and shows candidate images, each with a number drawn in its top-left "
        "corner. Choose the matching image. The first steps are solved examples that show the rule.\n\n"
        "Task: {task}"
    ),
    "icir_step": "Step {step}. {description}",
    # --icir-text none (the default): the paper builds ICIR "without any text instruction"; the task
    # statement and step descriptions are left out, and only what every task shares stays.
    "icir_intro_image_only": (
        "Each step shows candidate images, each with a number drawn in its top-left corner. The first steps "
        "are solved examples: work out from them what is being chosen, then choose the matching image."
    ),
    "iomr_intro": (
        "This task has no words. You see an initial condition, then at each step the current condition "
        "and option images, each with a letter drawn in its top-left corner. Choose the option that comes "
        "next."
    ),
    "iomr_initial": "Initial condition:",
    "iomr_step": "Step {step}. Current condition, then the options:",
    # The assistant turn that history=gold and the ICIR solved examples put in the conversation.
    "gold_answer": "ANSWER: {label}",
}


def prompt_hash() -> str:
    """SHA-256 of the prompt texts above (sorted JSON), recorded with every answer."""
    return hashlib.sha256(json.dumps(PROMPTS, sort_keys=True).encode()).hexdigest()
