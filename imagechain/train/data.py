"""Training samples: stories as tokenised conversations with labels, and the frames behind each scene.

Text is tokenised once up front (so a story over the context length is found before training, never
truncated); frames are opened and preprocessed per batch, in `ChainDataset.__getitem__`.

    samples, skipped = build_samples(stories, processor, config, max_length=4096)
    loader = DataLoader(ChainDataset(samples, processor, family), batch_size=4,
                        collate_fn=Collator(family, processor.tokenizer.pad_token_id, processor))
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset, Sampler

from imagechain.data.conversation import Conversation, build_conversation
from imagechain.data.render import StoryTooLong, select_frames, tokenize
from imagechain.data.story import Frame, Story, open_frame
from imagechain.train.config import TrainConfig
from imagechain.train.loss_masks import IGNORE_INDEX, build_labels
from imagechain.train.scene_features import VisualFamily

# Text fields a sample carries, and the value padding takes in each.
PAD_VALUES = {"input_ids": None, "attention_mask": 0, "labels": IGNORE_INDEX, "mm_token_type_ids": 0}


@dataclass
class TrainSample:
    story_id: str
    """The story this sample was built from."""
    text: dict[str, torch.Tensor]
    """1-D input_ids, attention_mask, labels (and mm_token_type_ids for Qwen2-VL)."""
    image_grid_thw: torch.Tensor | None
    """Qwen2-VL: the representative frames' grids, one row per scene (M-RoPE positions); else None."""
    frames: list[list[Frame]]
    """Per scene placeholder, the frames whose features are averaged (see imagechain.data.render.select_frames)."""
    scene_token_counts: list[int]
    """Image tokens of each scene placeholder in input_ids."""

    @property
    def num_tokens(self) -> int:
        return int(self.text["input_ids"].shape[0])


def make_sample(story: Story, processor, variant: str, form: str, loss: str, scene_visual: str,
                max_length: int, image_mode: str = "native") -> TrainSample:
    """One story as a training sample; StoryTooLong past max_length, DataError on bad data."""
    return sample_from_conversation(build_conversation(story, variant), processor, form, loss, scene_visual,
                                    max_length, image_mode)


def sample_from_conversation(conversation: Conversation, processor, form: str, loss: str, scene_visual: str,
                             max_length: int, image_mode: str = "native") -> TrainSample:
    """A conversation (any variant, or one built by hand) as a training sample."""
    tokenized = tokenize(conversation, processor, max_length, form=form, image_mode=image_mode)
    inputs = tokenized.inputs
    text = {"input_ids": inputs["input_ids"][0], "attention_mask": inputs["attention_mask"][0],
            "labels": build_labels(tokenized, processor, loss, form)}
    if "mm_token_type_ids" in inputs:
        text["mm_token_type_ids"] = inputs["mm_token_type_ids"][0]
    return TrainSample(story_id=conversation.story_id, text=text, image_grid_thw=inputs.get("image_grid_thw"),
                       frames=select_frames(conversation.scene_frames, scene_visual),
                       scene_token_counts=list(tokenized.image_token_counts))


def build_samples(stories: Iterable[Story], processor, config: TrainConfig,
                  max_length: int) -> tuple[list[TrainSample], list[str]]:
    """Samples of `stories` under `config` (variant, form, loss, scene_visual, image_mode, too_long, limit).

    Returns the samples and the ids of stories skipped for being longer than max_length.
    """
    samples, skipped = [], []
    for story in stories:
        if config.limit is not None and len(samples) + len(skipped) >= config.limit:
            break
        try:
            samples.append(make_sample(story, processor, config.variant, config.form, config.loss,
                                       config.scene_visual, max_length, config.image_mode))
        except StoryTooLong as err:
            if config.too_long == "error":
                raise
            skipped.append(err.story_id)
    return samples, skipped


class ChainDataset(Dataset):
    """Samples with their frames opened and preprocessed on access."""

    def __init__(self, samples: list[TrainSample], processor, family: VisualFamily):
        self.samples, self.processor, self.family = samples, processor, family

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        sample = self.samples[index]
        images = [open_frame(frame) for frames in sample.frames for frame in frames]
        return {"sample": sample, "frames": self.family.process(self.processor, images) if images else None}


class EpochShuffle(Sampler):
    """A permutation of the dataset that depends only on (seed, epoch): the same on every rank and resume."""

    def __init__(self, size: int, seed: int):
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.size, generator=generator).tolist())

    def __len__(self) -> int:
        return self.size


class Collator:
    """Right-pads the text fields and concatenates the frames of a batch, scene by scene in order."""

    def __init__(self, family: VisualFamily, pad_token_id: int, processor):
        self.family, self.pad_token_id, self.processor = family, pad_token_id, processor

    def __call__(self, items: list[dict]) -> dict[str, torch.Tensor]:
        samples = [item["sample"] for item in items]
        batch = self._text(samples)
        parts = [item["frames"] for item in items if item["frames"] is not None]
        frames = self.family.collate(parts) if parts else self.family.dummy(self.processor)
        batch.update({f"frame_{key}": value for key, value in frames.items()})
        batch["frames_per_scene"] = torch.tensor([len(f) for s in samples for f in s.frames], dtype=torch.long)
        batch["scene_token_counts"] = torch.tensor([c for s in samples for c in s.scene_token_counts],
                                                   dtype=torch.long)
        grids = [s.image_grid_thw for s in samples if s.image_grid_thw is not None]
        if grids:
            batch["image_grid_thw"] = torch.cat(grids)
        return batch

    def _text(self, samples: list[TrainSample]) -> dict[str, torch.Tensor]:
        longest = max(sample.num_tokens for sample in samples)
        batch = {}
        for key, pad in PAD_VALUES.items():
            if key not in samples[0].text:
                continue
            value = self.pad_token_id if pad is None else pad
            rows = [torch.nn.functional.pad(s.text[key], (0, longest - s.num_tokens), value=value) for s in samples]
            batch[key] = torch.stack(rows)
        return batch
