"""Which token positions a training loss counts, built from the rendered conversation.

Modes (imagechain.train.config.LOSS_MODES):
- `all-text`: every text token, the paper's equation 2. Image positions never count.
- `assistant`: every assistant turn: what the model writes after its generation prompt
  (`ASSISTANT:`, `<|im_start|>assistant\\n`), through the template's end-of-turn marker (`</s>`,
  `<|im_end|>\\n`), so it learns to stop.
- `final`: the target turn only, in the same shape (it starts at `TokenizedConversation.prompt_length`).

How: each message's character span in the rendered text comes from rendering the message prefixes
(the rendering of messages[:k] must be a prefix of the whole one: checked, so a template that
rewrites earlier turns fails loudly). The tokenizer's offset mapping turns character spans into
token positions of the un-expanded text; those carry over to the processor's input_ids, where each
image placeholder became its run of image tokens (checked token by token). No token id is guessed.

    labels = build_labels(tokenized, processor, mode="assistant", form="chat")   # -100 outside
"""

from __future__ import annotations

import dataclasses

import torch

from imagechain.data.conversation import Conversation, count_placeholders
from imagechain.data.render import TokenizedConversation, image_token, render
from imagechain.train.config import LOSS_MODES
from schemas.errors import DataError

IGNORE_INDEX = -100


def _render_prefix(conversation: Conversation, count: int, processor, form: str) -> str:
    messages = conversation.messages[:count]
    prefix = dataclasses.replace(conversation, messages=messages,
                                 scene_frames=conversation.scene_frames[:count_placeholders(messages)])
    return render(prefix, processor, form, with_target=True)


def message_spans(conversation: Conversation, processor, form: str = "chat") -> tuple[str, list[tuple[int, int]]]:
    """The rendered text and each message's [start, end) character span in it."""
    full = render(conversation, processor, form, with_target=True)
    spans, start = [], 0
    for count in range(1, len(conversation.messages) + 1):
        prefix = _render_prefix(conversation, count, processor, form)
        if not full.startswith(prefix) or len(prefix) < start:
            raise DataError(f"story {conversation.story_id!r}: rendering its first {count} messages is not a "
                            f"prefix of the whole rendering ({form} form); cannot locate the turns for the loss")
        spans.append((start, len(prefix)))
        start = len(prefix)
    return full, spans


def assistant_spans(conversation: Conversation, processor, form: str = "chat",
                    final_only: bool = False) -> tuple[str, list[tuple[int, int]]]:
    """Character spans of assistant turns: what the model writes after its generation prompt, to the turn's end.

    A turn starts where the generation prompt of the conversation up to it ends (`ASSISTANT:` leaves
    the space before the text to the model, ChatML's `assistant\\n` does not); where a template's
    generation prompt is not a prefix of the rendered turn, at the turn's first content character.
    """
    text, spans = message_spans(conversation, processor, form)
    chosen = []
    indices = [i for i, m in enumerate(conversation.messages) if m["role"] == "assistant"]
    for index in indices[-1:] if final_only else indices:
        start, end = spans[index]
        chosen.append((_turn_start(conversation, index, processor, form, text, start, end), end))
    return text, chosen


def _turn_start(conversation: Conversation, index: int, processor, form: str, text: str, start: int, end: int) -> int:
    messages = conversation.messages[:index + 1]
    upto = dataclasses.replace(conversation, messages=messages,
                               scene_frames=conversation.scene_frames[:count_placeholders(messages)])
    prompt = render(upto, processor, form, with_target=False)
    if text.startswith(prompt) and start <= len(prompt) < end:
        return len(prompt)
    content = _content_text(conversation.messages[index]).strip()
    found = text.find(content, start, end) if content else -1
    if found < 0:
        raise DataError(f"story {conversation.story_id!r}: assistant turn {index} text not found in its "
                        f"rendering ({form} form)")
    return found


def _content_text(message: dict) -> str:
    content = message["content"]
    if isinstance(content, str):
        return content
    texts = [part["text"] for part in content if part.get("type") == "text"]
    return texts[0] if texts else ""


def loss_mask(tokenized: TokenizedConversation, processor, mode: str = "all-text", form: str = "chat") -> list[bool]:
    """One flag per position of tokenized.inputs["input_ids"][0]: does this token count in the loss."""
    if mode not in LOSS_MODES:
        raise DataError(f"unknown loss mode {mode!r}; known: {', '.join(LOSS_MODES)}")
    conversation = tokenized.conversation
    tokenizer = processor.tokenizer
    image_id = tokenizer.convert_tokens_to_ids(image_token(processor))
    if mode == "all-text":
        text, spans = render(conversation, processor, form, with_target=True), None
    else:
        text, spans = assistant_spans(conversation, processor, form, final_only=mode == "final")
    # The same special-token rule as render.tokenize: chat templates write their own BOS.
    encoding = tokenizer(text, add_special_tokens=form == "transcript", return_offsets_mapping=True)
    flags = []
    for token, (start, end) in zip(encoding["input_ids"], encoding["offset_mapping"]):
        inside = spans is None or any(start < span_end and end > span_start for span_start, span_end in spans)
        flags.append(inside and token != image_id)
    return _expand(flags, encoding["input_ids"], tokenized, image_id)


def _expand(flags: list[bool], ids: list[int], tokenized: TokenizedConversation, image_id: int) -> list[bool]:
    """Carry per-token flags over to input_ids, where placeholder i became image_token_counts[i] tokens."""
    expanded_flags, expanded_ids, placeholder = [], [], 0
    counts = tokenized.image_token_counts
    for token, flag in zip(ids, flags):
        repeat = 1
        if token == image_id:
            if placeholder >= len(counts):
                raise DataError(f"story {tokenized.conversation.story_id!r}: more image placeholders than "
                                f"image token spans ({len(counts)})")
            repeat, placeholder = counts[placeholder], placeholder + 1
        expanded_flags += [flag] * repeat
        expanded_ids += [token] * repeat
    if expanded_ids != tokenized.inputs["input_ids"][0].tolist():
        raise DataError(f"story {tokenized.conversation.story_id!r}: the text tokenised alone does not line up "
                        "with the processor's input_ids; cannot place the loss mask")
    return expanded_flags


def build_labels(tokenized: TokenizedConversation, processor, mode: str = "all-text", form: str = "chat"):
    """input_ids with IGNORE_INDEX wherever the loss must not look (a LongTensor of one row)."""
    input_ids = tokenized.inputs["input_ids"][0]
    mask = torch.tensor(loss_mask(tokenized, processor, mode, form), dtype=torch.bool)
    return torch.where(mask, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
