"""Stories as conversations, one builder per variant of the paper's Table 1.

Every variant ends with the target: an assistant turn holding the last scene's description.
Each image placeholder stands for one scene visual; `scene_frames[i]` lists the frames of the
scene behind placeholder i, so training can average them (the paper's V-bar, section 3.2).

| variant          | input (section 5.1)                                      | fine-tuned |
| ---------------- | -------------------------------------------------------- | ---------- |
| MLLM             | one user turn: every scene's visual, context descriptions | no         |
| MLLM-ICL         | 3 demonstrations (train split) in MLLM form, then MLLM    | no         |
| MLLM-FT          | as MLLM                                                  | yes        |
| VisualContext    | one user turn: every scene's visual, no descriptions      | yes        |
| FinalScene       | one user turn: the last scene's visual only               | yes        |
| ImageChain-NoFT  | multi-turn: one turn per scene (Figure 3)                 | no         |
| ImageChain       | as ImageChain-NoFT                                       | yes        |

The multi-turn questions are the paper's (section 3.3). The single-turn wording (FLAT_*) is not
published; ours is below, in one place.

    conv = build_conversation(story, "ImageChain")
    conv.messages[-1]   # {"role": "assistant", "content": [{"type": "text", "text": conv.target}]}
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass

from imagechain.data.buckets import split_of
from imagechain.data.story import Frame, Story
from schemas.errors import DataError

FIRST_QUESTION = "What is happening in this image?"
NEXT_QUESTION = "What is happening in the next image?"
FLAT_INTRO = "These images are the scenes of one story, in order, each followed by its description.\n"
FLAT_INTRO_NO_TEXT = "These images are the scenes of one story, in order.\n"
FLAT_QUESTION = "What is happening in the last image?"
ICL_DEMONSTRATIONS = 3  # the paper's MLLM-ICL "receives three demonstrations"


@dataclass
class Conversation:
    story_id: str
    """The story this conversation was built from."""
    variant: str
    """One of VARIANTS, e.g. "ImageChain"."""
    messages: list[dict]
    """HF/OpenAI-shaped turns; user content has {"type": "image"} and {"type": "text"} parts;
    the last message is the assistant target."""
    scene_frames: list[list[Frame]]
    """One entry per image placeholder, in order: the frames of that placeholder's scene."""
    target: str
    """The last scene's description: the text of the final assistant turn."""
    num_scenes: int
    """Scenes of the story itself (its context bucket), demonstrations not counted."""

    @property
    def prompt_messages(self) -> list[dict]:
        """The messages without the target turn: what a model sees at generation time."""
        return self.messages[:-1]


def _image() -> dict:
    return {"type": "image"}


def _text(text: str) -> dict:
    return {"type": "text", "text": text}


def _chain(story: Story) -> tuple[list[dict], list[list[Frame]]]:
    """Figure 3: one user turn per scene (its visual and question), one assistant turn per description."""
    messages = []
    for index, scene in enumerate(story.scenes):
        question = FIRST_QUESTION if index == 0 else NEXT_QUESTION
        messages.append({"role": "user", "content": [_image(), _text(question)]})
        if index < story.num_scenes - 1:
            messages.append({"role": "assistant", "content": [_text(scene.description)]})
    return messages, [list(scene.frames) for scene in story.scenes]


def _flat(story: Story, with_descriptions: bool = True) -> tuple[list[dict], list[list[Frame]]]:
    """One user turn: each scene's visual, then (context scenes) its description; the question last."""
    content = [_text(FLAT_INTRO if with_descriptions else FLAT_INTRO_NO_TEXT)]
    for scene in story.scenes[:-1]:
        content.append(_image())
        if with_descriptions:
            content.append(_text(scene.description + "\n"))
    content += [_image(), _text(FLAT_QUESTION)]
    return [{"role": "user", "content": content}], [list(scene.frames) for scene in story.scenes]


def _final_scene(story: Story) -> tuple[list[dict], list[list[Frame]]]:
    """Image captioning of the last scene: no context at all."""
    return [{"role": "user", "content": [_image(), _text(FIRST_QUESTION)]}], [list(story.scenes[-1].frames)]


def _icl(story: Story, pool: Sequence[Story]) -> tuple[list[dict], list[list[Frame]]]:
    """Three solved stories in MLLM form (user turn, then their target), then the story itself."""
    messages, frames = [], []
    for demo in draw_demonstrations(story, pool):
        demo_messages, demo_frames = _flat(demo)
        messages += demo_messages + [{"role": "assistant", "content": [_text(demo.scenes[-1].description)]}]
        frames += demo_frames
    query_messages, query_frames = _flat(story)
    return messages + query_messages, frames + query_frames


def draw_demonstrations(story: Story, pool: Sequence[Story], count: int = ICL_DEMONSTRATIONS) -> list[Story]:
    """`count` training stories other than `story`, the same ones on every run (seeded by the story id)."""
    candidates = sorted((s for s in pool if s.story_id != story.story_id), key=lambda s: s.story_id)
    if len(candidates) < count:
        raise DataError(f"MLLM-ICL needs {count} demonstration stories besides {story.story_id!r}; "
                        f"the pool has {len(candidates)}")
    seed = int.from_bytes(hashlib.sha256(story.story_id.encode()).digest()[:8], "big")
    chosen = random.Random(seed).sample(candidates, count)
    for demo in chosen:
        if split_of(demo) != "train":
            raise DataError(f"demonstration {demo.story_id!r} is from the {split_of(demo)} split; "
                            "MLLM-ICL draws from the training split")
    return chosen


# Variant name -> builder of (messages without the target, scene frames per placeholder).
VARIANTS = {
    "MLLM": lambda story, pool: _flat(story),
    "MLLM-ICL": _icl,
    "MLLM-FT": lambda story, pool: _flat(story),
    "VisualContext": lambda story, pool: _flat(story, with_descriptions=False),
    "FinalScene": lambda story, pool: _final_scene(story),
    "ImageChain-NoFT": lambda story, pool: _chain(story),
    "ImageChain": lambda story, pool: _chain(story),
}
FINETUNED_VARIANTS = ("MLLM-FT", "VisualContext", "FinalScene", "ImageChain")


def build_conversation(story: Story, variant: str, demonstrations: Sequence[Story] = (),
                       system: str | None = None) -> Conversation:
    """`story` as a `variant` conversation; `demonstrations` is the MLLM-ICL pool (training stories)."""
    if variant not in VARIANTS:
        raise DataError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
    messages, scene_frames = VARIANTS[variant](story, demonstrations)
    target = story.scenes[-1].description
    messages = messages + [{"role": "assistant", "content": [_text(target)]}]
    if system is not None:
        messages.insert(0, {"role": "system", "content": [_text(system)]})
    conversation = Conversation(story_id=story.story_id, variant=variant, messages=messages,
                                scene_frames=scene_frames, target=target, num_scenes=story.num_scenes)
    check_placeholders(conversation)
    return conversation


def count_placeholders(messages: list[dict]) -> int:
    return sum(1 for m in messages if isinstance(m["content"], list) for part in m["content"]
               if part.get("type") == "image")


def check_placeholders(conversation: Conversation) -> None:
    """Image placeholders must match scene visuals one to one; the error names the story."""
    placeholders = count_placeholders(conversation.messages)
    if placeholders != len(conversation.scene_frames):
        raise DataError(f"story {conversation.story_id!r} ({conversation.variant}): {placeholders} image "
                        f"placeholders but {len(conversation.scene_frames)} scene visuals")
