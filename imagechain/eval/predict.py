"""Next-scene prediction: every Table 1 variant of every story, through any chat backend.

For each story and variant the conversation is built without its target (imagechain.data.conversation),
sent to the variant's backend, and the reply appended to `predictions.jsonl` at once, one
`PredictionRecord` per line:

    {"story_id", "bucket": "C3", "num_scenes": 3, "split", "variant", "model", "prompt_hash",
     "params": {...}, "text", "reference", "status": "ok" | "too_long" | "error", "error"}

A killed run resumes: a story whose (variant, story, model, prompt hash, params) already has an
`ok` or `too_long` record is not sent again; `error` records are retried.

Scene visuals. Frames are written once as content-addressed PNGs under `frames_dir`. A chat
backend (an OpenAI-compatible server, the in-process transformers backend) takes one image file
per placeholder, so there each scene is ONE representative frame (`frame`: first, middle or last;
default first, as the public Qwen code does). A backend that takes scene frames
(imagechain.eval.scene_generator, `takes_scene_frames`) gets, per placeholder, the frames to
average: those `VariantRun.scene_visual` selects (mean, last, first, as training), or the one
representative frame when it is None. `params` records which (`scene_input`, `image_mode`), so a
change of either is a new prediction, not a resumed one.

Defaults are the public code's: temperature 0.2, top_p 0.1, 1024 new tokens, seed 30; `greedy`
sets temperature 0. The seed is applied per call, so a resumed run samples as an unbroken one would.

    summary = asyncio.run(predict_stories(stories, [VariantRun("ImageChain", backend, "llava")], Path("out")))
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, NotRequired, TypedDict

from agents.backends.chat import (
    BackendError,
    ChatModel,
    ContextOverflow,
    EndpointUnavailable,
    SamplingParams,
    file_sha256,
)
from imagechain.data.conversation import Conversation, build_conversation
from imagechain.data.render import FRAME_CHOICES, representative, select_frames
from imagechain.data.story import Frame, Story
from imagechain.eval.jsonl_store import JsonlStore, read_jsonl
from schemas.durable_files import write_atomically
from schemas.errors import DataError

PREDICTION_KEY = ("variant", "story_id", "model", "prompt_hash", "params")
FINISHED = ("ok", "too_long")


class PredictionRecord(TypedDict):
    """One line of predictions.jsonl: one story under one variant."""

    story_id: str
    bucket: str
    """`C<num_scenes>`: the story's own context length."""
    num_scenes: int
    split: str | None
    variant: str
    model: str
    """The name of the model that answered (with `+adapter` for a LoRA adapter)."""
    prompt_hash: str
    """SHA-256 of the prompt with each image by the SHA-256 of its bytes."""
    params: dict
    """PredictionSettings.as_dict() of the call, plus `scene_input` (mean, last, first, or frame:<which>)
    and `image_mode` (native or single-tile)."""
    reference: str
    """The human description of the last scene."""
    text: NotRequired[str | None]
    """The model's description; None unless `status` is ok. Absent until the call is made."""
    status: NotRequired[Literal["ok", "too_long", "error"]]
    error: NotRequired[str]
    """What went wrong, for too_long and error."""
    domain: NotRequired[str]
    """Mementos only: the sequence's domain (comics, dl, robo)."""
    turns: NotRequired[list[str]]
    """Mementos chain variants only: the answer of each turn, in order."""


@dataclass(frozen=True)
class PredictionSettings:
    temperature: float = 0.2
    """Sampling temperature (the public eval script's default)."""
    top_p: float = 0.1
    """Nucleus sampling mass."""
    max_new_tokens: int = 1024
    """Upper bound on the description's tokens."""
    seed: int = 30
    """Sampling seed, applied to every call."""
    greedy: bool = False
    """Temperature 0 (argmax decoding) whatever `temperature` says."""
    frame: str = "first"
    """Which frame stands for a scene: first, middle or last."""

    def __post_init__(self):
        numbers = {"temperature": self.temperature, "top_p": self.top_p}
        integers = {"max_new_tokens": self.max_new_tokens, "seed": self.seed}
        for name, value in {**numbers, **integers}.items():
            kinds = (int, float) if name in numbers else (int,)
            if isinstance(value, bool) or not isinstance(value, kinds):
                raise DataError(f"{name}: expected a number, got {value!r}")
        if not isinstance(self.greedy, bool):
            raise DataError(f"greedy: expected true or false, got {self.greedy!r}")
        if self.frame not in FRAME_CHOICES:
            raise DataError(f"frame: {self.frame!r} is not one of {', '.join(FRAME_CHOICES)}")
        if self.max_new_tokens < 1:
            raise DataError(f"max_new_tokens: {self.max_new_tokens} is below 1")

    def params(self) -> SamplingParams:
        temperature = 0.0 if self.greedy else self.temperature
        return SamplingParams(max_tokens=self.max_new_tokens, temperature=temperature, top_p=self.top_p,
                              seed=self.seed)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class VariantRun:
    """One variant and the backend that answers it; `model` is the name written to records."""

    variant: str
    backend: ChatModel
    model: str
    scene_visual: str | None = None
    """For a backend that takes scene frames: the frames each placeholder averages (mean, last,
    first); None: one representative frame. Chat backends always get one frame."""

    @property
    def takes_frames(self) -> bool:
        return bool(getattr(self.backend, "takes_scene_frames", False))

    def scene_input(self, settings: "PredictionSettings") -> str:
        """What the model is shown per scene, as records name it: a reduction, or frame:<which>."""
        return self.scene_visual if self.takes_frames and self.scene_visual else f"frame:{settings.frame}"

    def params(self, settings: "PredictionSettings") -> dict:
        return {**settings.as_dict(), "scene_input": self.scene_input(settings),
                "image_mode": getattr(self.backend, "image_mode", "native")}


@dataclass
class PredictionSummary:
    generated: int = 0
    """Predictions made by this run."""
    resumed: int = 0
    """Predictions found finished in predictions.jsonl."""
    too_long: int = 0
    errors: list[str] = field(default_factory=list)
    records: list[PredictionRecord] = field(default_factory=list)
    """This run's record of every (story, variant), new or resumed: what results are computed from."""


def frame_file(frame: Frame, frames_dir: Path) -> str:
    """A file path for the frame: its own path, or a PNG named by the SHA-256 of its bytes."""
    if isinstance(frame, (str, Path)):
        return str(frame)
    buffer = io.BytesIO()
    frame.convert("RGB").save(buffer, format="PNG")
    data = buffer.getvalue()
    path = frames_dir / f"{hashlib.sha256(data).hexdigest()[:24]}.png"
    if not path.is_file():
        write_atomically(path, data, fsync=False)  # a kill never leaves half a frame under its name
    return str(path)


def prompt_messages(conversation: Conversation, frames_dir: Path, frame: str = "first",
                    scene_visual: str | None = None, scene_frames: bool = False) -> list[dict]:
    """The conversation without its target, in backend message form. Each image placeholder is one
    file path (`path`: the `frame` of its scene), or with `scene_frames` the files of the frames it
    averages (`frames`: those `scene_visual` selects; None: the one representative frame)."""
    if scene_frames and scene_visual:
        chosen = select_frames(conversation.scene_frames, scene_visual)
    else:
        chosen = [[representative(frames, frame)] for frames in conversation.scene_frames]
    files = iter([[frame_file(f, frames_dir) for f in frames] for frames in chosen])
    messages = []
    for message in conversation.prompt_messages:
        parts = [_image_part(next(files), scene_frames) if part["type"] == "image" else dict(part)
                 for part in message["content"]]
        messages.append({"role": message["role"], "content": parts})
    return messages


def _image_part(files: list[str], scene_frames: bool) -> dict:
    return {"type": "image", "frames": files} if scene_frames else {"type": "image", "path": files[0]}


def prompt_hash(messages: list[dict]) -> str:
    """SHA-256 of the prompt with each image by the SHA-256 of its bytes (paths do not matter)."""
    def image(part: dict) -> dict:
        if "frames" in part:
            return {"type": "image", "sha256": [file_sha256(path) for path in part["frames"]]}
        return {"type": "image", "sha256": file_sha256(part["path"])}

    canonical = [{"role": m["role"], "content": [image(p) if p["type"] == "image" else p for p in m["content"]]}
                 for m in messages]
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def base_record(story: Story, run: VariantRun, settings: PredictionSettings, digest: str) -> PredictionRecord:
    return {"story_id": story.story_id, "bucket": f"C{story.num_scenes}", "num_scenes": story.num_scenes,
            "split": story.split, "variant": run.variant, "model": run.model, "prompt_hash": digest,
            "params": run.params(settings), "reference": story.scenes[-1].description}


async def predict_one(story: Story, run: VariantRun, store: JsonlStore, settings: PredictionSettings,
                      frames_dir: Path, pool: Sequence[Story], summary: PredictionSummary) -> None:
    """Predict (or resume) one story under one variant and append its record."""
    conversation = build_conversation(story, run.variant, pool)
    messages = prompt_messages(conversation, frames_dir, settings.frame, run.scene_visual, run.takes_frames)
    record = base_record(story, run, settings, prompt_hash(messages))
    if store.done(record):
        summary.resumed += 1
        summary.records.append(store.get(record))
        return
    try:
        result = await run.backend.chat(messages, params=settings.params())
        record.update(text=result.text.strip(), status="ok")
        summary.generated += 1
    except ContextOverflow as err:
        record.update(text=None, status="too_long", error=str(err))
        summary.too_long += 1
    except EndpointUnavailable:
        raise  # the server is gone: stop here; a re-run resumes
    except BackendError as err:  # e.g. a server's 400 for one request: record it, go on
        record.update(text=None, status="error", error=str(err))
        summary.errors.append(f"{run.variant} {story.story_id}: {err}")
    store.append(record)
    summary.records.append(record)


async def predict_stories(stories: Sequence[Story], runs: Sequence[VariantRun], out: Path,
                          settings: PredictionSettings = PredictionSettings(), pool: Sequence[Story] = (),
                          concurrency: int = 4, progress: Callable[[int], None] | None = None) -> PredictionSummary:
    """Predict every story under every run into OUT/predictions.jsonl (frames under OUT/frames)."""
    store = JsonlStore(out / "predictions.jsonl", PREDICTION_KEY, accept=lambda r: r.get("status") in FINISHED)
    summary = PredictionSummary()
    await for_each_story(stories, runs, lambda story, run: predict_one(story, run, store, settings, out / "frames",
                                                                        pool, summary), concurrency, progress)
    return summary


async def for_each_story(stories: Sequence[Story], runs: Sequence[VariantRun], work, concurrency: int,
                         progress: Callable[[int], None] | None = None) -> None:
    """await work(story, run) for every story under every run, `concurrency` at a time, counting."""
    slots = asyncio.Semaphore(concurrency)
    done = 0

    async def one(story: Story, run: VariantRun) -> None:
        nonlocal done
        async with slots:
            await work(story, run)
        done += 1
        if progress:
            progress(done)

    # Variant-major order: an in-process model stays busy with one variant's prompts at a time.
    await asyncio.gather(*(one(story, run) for run in runs for story in stories))


def prediction_id(record: PredictionRecord) -> str:
    """A short id of one prediction: its key and its text (judgments point at predictions by it)."""
    fields = [record.get(name) for name in PREDICTION_KEY] + [record.get("text")]
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:32]


def load_predictions(path: Path) -> list[PredictionRecord]:
    """The latest record per prediction key of a predictions.jsonl (read only; a torn last line is skipped)."""
    latest = {}
    for record in read_jsonl(path):
        latest[tuple(json.dumps(record.get(name), sort_keys=True) for name in PREDICTION_KEY)] = record
    return list(latest.values())
