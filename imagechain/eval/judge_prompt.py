# The paper's prompt, verbatim: its long lines are the paper's.
# ruff: noqa: E501
"""The SimRate judge prompt, VERBATIM from the ImageChain paper's Appendix A, and how it is sent.

`PAPER_PROMPT` is the text between the code fences of Appendix A ("A Evaluation Prompt") of
arXiv 2502.19409 exactly as the paper prints it: Llama-3 header tokens, the two solved examples,
the paper's line breaks (the PDF's line wrapping is kept, not repaired), its typos ("### Predicted
caption" without a colon in the first example, "<|start_header_id|> user" with a space) and its
final block with empty caption slots. `PROMPT_SHA256` is the SHA-256 of its UTF-8 bytes; a test
checks the two agree, and every results file records the hash, so a changed prompt cannot pass
unnoticed.

Sending it. The paper shows the raw Llama-3 token stream; our backends take chat messages, so the
stream is cut at its header tokens into system / user / assistant turns, each turn's text trimmed
(Llama-3's own chat template trims every message, so a Llama-3 judge sees the same turns), the
final empty `assistant` header becomes the generation prompt, and the two captions under test go
on the line after "### Ground truth caption:" and "### Predicted caption:" of the last user turn,
where the examples put theirs. The paper does not print how its slots were filled; this is ours.

    messages = judge_messages(reference="A man rides a bike.", prediction="Someone cycles.")
"""

from __future__ import annotations

import hashlib
import re

PAPER_PROMPT = """<|start_header_id|>system<|end_header_id|>
You are a pattern-following assistant that can only answer with "Yes" or "No". Your goal is to determine whether a predicted caption
conveys a similar enough meaning to the ground truth caption provided.<|eot_id|><|start_header_id|>user<|end_header_id|>
### Instruction:
Determine if the predicted caption conveys a similar meaning to the ground truth caption.
### Ground truth caption:
A man is riding a bicycle through a park.
### Predicted caption
A person is cycling along a path in a park.
### Does the predicted caption convey a similar meaning to the ground truth caption (Yes or No)?<|eot_id|>
<|start_header_id|>assistant<|end_header_id|>
Yes<|eot_id|><|start_header_id|>user<|end_header_id|>
Good job! Indeed, the predicted caption conveys a similar meaning to the ground truth. Both describe a person riding a bicycle in a
park, even though different words are used. The core meaning is preserved.
Determine if the predicted caption conveys a similar meaning to the ground truth caption.
### Ground truth caption:
A woman is sitting on a wooden bench in the park, reading a paperback novel under the shade of a tree.
### Predicted caption:
A woman relaxes in a shaded area of the park, sitting on a bench while enjoying a book.
### Does the predicted caption convey a similar meaning to the ground truth caption (Yes or No)?<|eot_id|>
<|start_header_id|>assistant<|end_header_id|>
Yes<|eot_id|><|start_header_id|> user<|end_header_id|>
Great! Although the wording differs, the predicted caption captures the essence of the ground truth. Both describe a woman sitting on a
bench in a shaded park area, reading a book. While the predicted caption simplifies certain details, such as omitting the specific mention
of the "paperback novel" and "under the shade of a tree," it still conveys the same overall scene and activity, making the meaning similar.
Let's do one more. Remember to answer with one word either "Yes" or "No".
Determine if the predicted caption conveys a similar meaning to the ground truth caption.
### Ground truth caption:
### Predicted caption:
### Does the predicted caption convey a similar meaning to the ground truth caption (Yes or No)?: <|eot_id|> <|start_header_id|>
assistant <|end_header_id|>"""

PROMPT_SHA256 = "dbe1246021fcec94636acb61cc6b7434292c8cdaf352d39ea6f8c4b51eaa53e2"

_HEADER = re.compile(r"<\|start_header_id\|>\s*(system|user|assistant)\s*<\|end_header_id\|>")
_GROUND_TRUTH_SLOT = "### Ground truth caption:"
_PREDICTED_SLOT = "### Predicted caption:"


def prompt_sha256(text: str = PAPER_PROMPT) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def paper_turns(text: str = PAPER_PROMPT) -> list[dict]:
    """The prompt as chat turns (role, trimmed text); the trailing empty assistant header is dropped."""
    turns = []
    matches = list(_HEADER.finditer(text))
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        body = text[match.end():end].replace("<|eot_id|>", "").strip()
        turns.append({"role": match.group(1), "content": body})
    if turns and turns[-1]["role"] == "assistant" and not turns[-1]["content"]:
        turns.pop()
    return turns


def judge_messages(reference: str, prediction: str, text: str = PAPER_PROMPT) -> list[dict]:
    """The paper's few-shot conversation with `reference` and `prediction` in the final, empty slots."""
    turns = paper_turns(text)
    last = turns[-1]["content"]
    # The final block's slots are the last occurrences; the examples above keep theirs.
    truth_at = last.rindex(_GROUND_TRUTH_SLOT) + len(_GROUND_TRUTH_SLOT)
    predicted_at = last.rindex(_PREDICTED_SLOT)
    head, tail = last[:truth_at], last[predicted_at + len(_PREDICTED_SLOT):]
    filled = f"{head}\n{_one_line(reference)}\n{_PREDICTED_SLOT}\n{_one_line(prediction)}{tail}"
    turns[-1] = {"role": "user", "content": filled}
    return [{"role": t["role"], "content": [{"type": "text", "text": t["content"]}]} for t in turns]


def _one_line(caption: str) -> str:
    # A caption with its own "### ..." line could pose as a section of the prompt; flatten it.
    return " ".join(caption.split())
