"""Conversations as model input: text through the model's chat template, then token ids.

Two text forms:
- "chat": the processor's own chat template (LLaVA-NeXT Vicuna, Qwen2-VL ChatML, ...).
- "transcript": the ImageChain public code's form (Figure 3), for LLaVA-v1.6-Vicuna:
      USER: <Image><image></Image> What is happening in this image? ASSISTANT: D1</s><s>USER: ... ASSISTANT:
  The image marker is `<Image>` + the processor's image token + `</Image>` (the capitalised tags
  stay literal text, as in the public code); for Qwen2-VL it is the vision-start, image-pad,
  vision-end triple its position ids need. The tokenizer adds the leading <s> itself.

Tokenising uses ONE representative frame per scene, so each scene costs the image tokens of one
image; training replaces that visual with the mean over the scene's frames, which has the same
shape only when the scene's frames share a size (checked here). A story longer than the context is
never truncated: `tokenize` raises StoryTooLong, and callers skip and count it or stop.

`image_mode` (imagechain.data.image_modes): `native` lets the processor expand each placeholder
(LLaVA-NeXT's any-resolution tiles); `single-tile` expands each to the base grid (576 tokens for
LLaVA-v1.6) and leaves pixels to the scene-feature code, which encodes one centre-cropped tile.

    tok = tokenize(conv, processor, max_length=4096)
    tok.inputs["input_ids"], tok.image_token_counts, tok.prompt_length
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from imagechain.data.conversation import Conversation, check_placeholders
from imagechain.data.image_modes import base_grid_tokens, check_image_mode, expand_image_tokens
from imagechain.data.story import Frame, frame_size, open_frame
from schemas.errors import DataError

FORMS = ("chat", "transcript")
FRAME_CHOICES = ("first", "middle", "last")
# How a scene's frames become its one visual (the reduction is a per-patch mean of the chosen frames):
# mean: every frame of every scene (the paper's V-bar); last: mean for context scenes, the target
# scene's last frame (the public LLaVA code); first: every scene's first frame (the public Qwen code).
SCENE_VISUALS = ("mean", "last", "first")


class StoryTooLong(DataError):
    """A rendered story does not fit the model's context. Never truncated: raised, or skipped and counted."""

    def __init__(self, story_id: str, length: int, max_length: int):
        self.story_id, self.length, self.max_length = story_id, length, max_length
        super().__init__(f"story {story_id!r} is {length} tokens, over the context length {max_length}")


@dataclass
class TokenizedConversation:
    conversation: Conversation
    """What was tokenised."""
    inputs: Any
    """The processor's BatchFeature, batch of one: input_ids, attention_mask, pixel_values and the
    model's image extras (image_sizes for LLaVA-NeXT, image_grid_thw for Qwen2-VL). In single-tile
    mode only input_ids and attention_mask: the tiles are encoded by the scene-feature code."""
    image_token_counts: list[int]
    """Image tokens of each placeholder, in order (one representative frame per scene)."""
    prompt_length: int
    """Tokens before the target's first token: the generation prompt, or the part a final-turn-only
    loss masks out."""

    @property
    def length(self) -> int:
        return int(self.inputs["input_ids"].shape[-1])


def image_token(processor) -> str:
    return processor.image_token


def image_marker(processor) -> str:
    """The transcript form's placeholder for one image under `processor`."""
    token = image_token(processor)
    if token == "<|image_pad|>":  # Qwen2-VL finds images by their vision-start token
        return "<|vision_start|><|image_pad|><|vision_end|>"
    return f"<Image>{token}</Image>"


def render(conversation: Conversation, processor, form: str = "chat", with_target: bool = True) -> str:
    """The conversation as text; without the target it ends with the generation prompt."""
    if form not in FORMS:
        raise DataError(f"unknown form {form!r}; known: {', '.join(FORMS)}")
    messages = conversation.messages if with_target else conversation.prompt_messages
    if form == "chat":
        text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=not with_target)
    else:
        text = transcript(messages, image_marker(processor))
    placeholders = text.count(image_token(processor))
    if placeholders != len(conversation.scene_frames):
        raise DataError(f"story {conversation.story_id!r} ({conversation.variant}): the rendered text has "
                        f"{placeholders} image placeholders but {len(conversation.scene_frames)} scene visuals")
    return text


def transcript(messages: list[dict], marker: str) -> str:
    """The paper's `USER: ... ASSISTANT: ...</s><s>` form; ends with `ASSISTANT:` when the last turn is a user's."""
    out = ""
    for message in messages:
        parts = [message["content"]] if isinstance(message["content"], str) else message["content"]
        text = " ".join(marker if isinstance(p, dict) and p["type"] == "image" else _part_text(p).strip()
                        for p in parts)
        if message["role"] == "system":
            out += text + " "
        elif message["role"] == "user":
            out += ("<s>" if out.endswith("</s>") else "") + f"USER: {text} ASSISTANT:"
        else:
            out += f" {text}</s>"
    return out


def _part_text(part) -> str:
    return part if isinstance(part, str) else part["text"]


def representative_frames(conversation: Conversation, frame: str = "first") -> list[Frame]:
    """One frame per placeholder; the scene's frames must share one size (checked, error names the story)."""
    if frame not in FRAME_CHOICES:
        raise DataError(f"unknown frame choice {frame!r}; known: {', '.join(FRAME_CHOICES)}")
    chosen = []
    for index, frames in enumerate(conversation.scene_frames):
        sizes = {frame_size(f) for f in frames}
        if len(sizes) > 1:
            raise DataError(f"story {conversation.story_id!r}: scene visual {index} mixes frame sizes "
                            f"{sorted(sizes)}; per-scene averaging needs one size")
        chosen.append(representative(frames, frame))
    return chosen


def representative(frames: list[Frame], frame: str = "first") -> Frame:
    """The frame that stands for a scene: its first, middle or last (FRAME_CHOICES)."""
    return {"first": frames[0], "middle": frames[len(frames) // 2], "last": frames[-1]}[frame]


def select_frames(scene_frames: Sequence[Sequence[Frame]], mode: str = "mean") -> list[list[Frame]]:
    """The frames whose mean stands for each placeholder under `mode` (SCENE_VISUALS)."""
    if mode not in SCENE_VISUALS:
        raise DataError(f"unknown scene visual {mode!r}; known: {', '.join(SCENE_VISUALS)}")
    if mode == "first":
        return [[frames[0]] for frames in scene_frames]
    chosen = [list(frames) for frames in scene_frames]
    if mode == "last" and chosen:
        chosen[-1] = chosen[-1][-1:]
    return chosen


def tokenize(conversation: Conversation, processor, max_length: int, form: str = "chat",
             frame: str = "first", image_mode: str = "native") -> TokenizedConversation:
    """Token ids and pixels of the whole conversation (target included); StoryTooLong past `max_length`."""
    check_placeholders(conversation)
    check_image_mode(image_mode, _model_type(processor))
    text = render(conversation, processor, form)
    # Chat templates write their own BOS; the transcript form relies on the tokenizer's (the <s> of Figure 3).
    add_special = form == "transcript"
    if image_mode == "single-tile":
        # Every frame becomes a tile of one size, so no size check is needed and no pixels here.
        expanded = expand_image_tokens(text, image_token(processor), base_grid_tokens(processor))
        inputs = processor.tokenizer([expanded], return_tensors="pt", add_special_tokens=add_special)
    else:
        images = [open_frame(f) for f in representative_frames(conversation, frame)]
        inputs = processor(text=[text], images=images or None, return_tensors="pt", add_special_tokens=add_special)
    image_id = processor.tokenizer.convert_tokens_to_ids(image_token(processor))
    counts = _runs_of(inputs["input_ids"][0].tolist(), image_id)
    if len(counts) != len(conversation.scene_frames):
        raise DataError(f"story {conversation.story_id!r} ({conversation.variant}): {len(counts)} image token "
                        f"spans after tokenising, {len(conversation.scene_frames)} scene visuals")
    tokenized = TokenizedConversation(conversation, inputs, counts,
                                      _prompt_length(conversation, processor, form, text, counts, add_special))
    if tokenized.length > max_length:
        raise StoryTooLong(conversation.story_id, tokenized.length, max_length)
    return tokenized


def _model_type(processor) -> str:
    # The processor's class tells the family (the processor carries no model config); only LLaVA-NeXT's
    # processor knows the base grid single-tile needs.
    classes = {cls.__name__ for cls in type(processor).__mro__}
    return "llava_next" if "LlavaNextProcessor" in classes else type(processor).__name__


def _runs_of(ids: list[int], token_id: int) -> list[int]:
    """Lengths of the maximal runs of `token_id` in `ids`: one run per image."""
    runs = []
    for position, token in enumerate(ids):
        if token != token_id:
            continue
        if position > 0 and ids[position - 1] == token_id:
            runs[-1] += 1
        else:
            runs.append(1)
    return runs


def _prompt_length(conversation, processor, form, text, counts, add_special) -> int:
    # Tokenise the prompt and the full text with their one-token placeholders, take the common
    # prefix (a tokenizer merging across the boundary moves that token to the target side), then
    # add the image tokens each placeholder expands into: all images sit in the prompt.
    prompt = render(conversation, processor, form, with_target=False)
    tokenizer = processor.tokenizer
    full_ids = tokenizer(text, add_special_tokens=add_special)["input_ids"]
    prompt_ids = tokenizer(prompt, add_special_tokens=add_special)["input_ids"]
    common = 0
    while common < min(len(full_ids), len(prompt_ids)) and full_ids[common] == prompt_ids[common]:
        common += 1
    return common + sum(counts) - len(counts)


def tokenize_fitting(conversations: Iterable[Conversation], processor, max_length: int, form: str = "chat",
                     frame: str = "first", image_mode: str = "native") -> tuple[list[TokenizedConversation], list[str]]:
    """Tokenise each conversation; those over `max_length` are skipped and their story ids returned."""
    kept, skipped = [], []
    for conversation in conversations:
        try:
            kept.append(tokenize(conversation, processor, max_length, form, frame, image_mode))
        except StoryTooLong as err:
            skipped.append(err.story_id)
    return kept, skipped
