"""Training settings: one dataclass, the paper's defaults, YAML recipes with `key=value` overrides.

Defaults are the paper's (section 5.3): LoRA r=128, alpha=256, learning rate 2e-5, cosine schedule
with 3% warm-up, AdamW, per-device batch 4, gradient accumulation 1, and epochs by bucket (3 for
C2-7, 5 for C2 and C3, 7 for C4-7). A recipe is a YAML mapping of these field names:

    config = load_config("imagechain/recipes/train/tiny-llava.yaml", ["lora_r=8", "data=[runs/eng]"])
    config.resolved_epochs()    # 3 for C2-7 unless `epochs` is set

Every error is a ConfigError (a DataError) whose message names the file, field or override.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from imagechain.data.buckets import TRAIN_BUCKETS
from imagechain.data.conversation import FINETUNED_VARIANTS
from imagechain.data.image_modes import IMAGE_MODES
from imagechain.data.render import FORMS, SCENE_VISUALS
from schemas.errors import DataError, read_yaml

# The paper's epochs per training bucket (section 5.3): the smaller buckets train longer.
EPOCHS_BY_BUCKET = {"C2-7": 3, "C2": 5, "C3": 5, "C4-7": 7}
LOSS_MODES = ("all-text", "assistant", "final")
SCHEDULERS = ("cosine", "linear", "constant")
# The training settings saved next to an adapter, for `imagechain eval` to check it shows scenes alike.
TRAIN_SETTINGS_FILE = "imagechain_train.json"
# LoRA on the language model's linear layers only (the vision tower and projector stay frozen, as in
# the public LLaVA code): a regular expression peft matches against full module names.
LANGUAGE_MODEL_LINEARS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


class ConfigError(DataError):
    """A bad recipe file, field or override; the message names which."""


@dataclass
class TrainConfig:
    model: str = "llava-hf/llava-v1.6-vicuna-7b-hf"
    """Base model: a hub id, a local folder, or `tiny:NAME` (tiny random-weight models for tests)."""
    data: list[str] = field(default_factory=list)
    """Story sources: StoryFrames folders or hub ids, and/or generated run folders (one or more)."""
    bucket: str = "C2-7"
    """Context-length bucket to train on: C2, C3, C4-7 or C2-7 (stories of that many scenes)."""
    split: str = "train"
    """Which split of the sources to train on: train or val."""
    limit: int | None = None
    """Train on at most this many stories (in source order); None: all of them."""
    variant: str = "ImageChain"
    """Fine-tuned variant of the paper's Table 1: ImageChain, MLLM-FT, VisualContext or FinalScene."""
    form: str = "chat"
    """Text form: chat (the model's chat template) or transcript (the public code's USER:/ASSISTANT:)."""
    scene_visual: str = "mean"
    """Scene visual: mean (the paper's per-patch mean over frames), last (mean for context scenes, the
    target scene's last frame: the public LLaVA code) or first (every scene's first frame: public Qwen code)."""
    image_mode: str = "native"
    """How a frame becomes image tokens: native (the model's own: LLaVA-NeXT any-resolution tiles) or
    single-tile (LLaVA-NeXT only: one centre-cropped tile, 576 tokens at 336 px, as the public code)."""
    loss: str = "all-text"
    """Loss positions: all-text (every text token, the paper's eq. 2), assistant (every assistant turn)
    or final (the target turn only). Image positions and padding never count."""
    max_length: int | None = None
    """Longest sample in tokens; None: the model's context length. Longer stories are never truncated."""
    too_long: str = "skip"
    """A story over max_length: skip (counted in the log and the model card) or error (stop)."""
    output_dir: str = "runs/imagechain-train/imagechain"
    """Where checkpoints (checkpoints/epoch-N), metrics.jsonl, the adapter and the model card go."""
    epochs: int | None = None
    """Training epochs; None: the paper's count for the bucket (3 for C2-7, 5 for C2/C3, 7 for C4-7)."""
    max_steps: int | None = None
    """Stop after this many optimizer steps in all (the schedule is planned for them); None: no cap."""
    learning_rate: float = 2e-5
    """Peak learning rate of AdamW."""
    lr_scheduler: str = "cosine"
    """Learning-rate schedule after warm-up: cosine, linear or constant."""
    warmup_ratio: float = 0.03
    """Fraction of all optimizer steps spent warming up linearly from 0."""
    weight_decay: float = 0.0
    """AdamW's decoupled weight decay (LLaVA's training scripts use 0)."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm; 0 turns clipping off."""
    per_device_batch_size: int = 4
    """Stories per device per forward pass."""
    gradient_accumulation_steps: int = 1
    """Forward passes per optimizer step."""
    lora_r: int = 128
    """LoRA rank."""
    lora_alpha: int = 256
    """LoRA scaling numerator (the update is scaled by alpha / r)."""
    lora_dropout: float = 0.05
    """Dropout on the LoRA input (LLaVA's default)."""
    lora_target_modules: str = LANGUAGE_MODEL_LINEARS
    """Regular expression over module names that get LoRA (default: the language model's linears)."""
    bf16: str = "auto"
    """bf16 mixed precision: auto (on GPUs that support it), true or false."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass: less memory, about a third more compute."""
    seed: int = 42
    """Seed of model init of LoRA, data order and dropout."""
    log_every: int = 10
    """Log loss, learning rate, tokens/s and MFU every this many optimizer steps."""
    resume: bool = True
    """Continue from the last complete epoch checkpoint in output_dir when there is one."""
    merge: bool = False
    """After training, also save the base model with the adapter merged in (output_dir/merged)."""
    num_workers: int = 0
    """DataLoader worker processes that open and preprocess frames."""

    def resolved_epochs(self) -> int:
        return self.epochs if self.epochs is not None else EPOCHS_BY_BUCKET[self.bucket]

    def validate(self) -> None:
        """Raise ConfigError naming the first field whose value is out of range."""
        _choice("bucket", self.bucket, TRAIN_BUCKETS)
        _choice("split", self.split, ("train", "val"))
        _choice("variant", self.variant, FINETUNED_VARIANTS)
        _choice("form", self.form, FORMS)
        _choice("scene_visual", self.scene_visual, SCENE_VISUALS)
        _choice("image_mode", self.image_mode, IMAGE_MODES)
        _choice("loss", self.loss, LOSS_MODES)
        _choice("too_long", self.too_long, ("skip", "error"))
        _choice("lr_scheduler", self.lr_scheduler, SCHEDULERS)
        _choice("bf16", self.bf16, ("auto", "true", "false"))
        for name in ("per_device_batch_size", "gradient_accumulation_steps", "lora_r", "lora_alpha", "log_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be at least 1, got {getattr(self, name)}")
        for name in ("epochs", "max_steps", "limit", "max_length"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be at least 1 or null, got {getattr(self, name)}")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"warmup_ratio: must be in [0, 1), got {self.warmup_ratio}")
        if not 0 <= self.lora_dropout < 1:
            raise ConfigError(f"lora_dropout: must be in [0, 1), got {self.lora_dropout}")
        if self.learning_rate <= 0:
            raise ConfigError(f"learning_rate: must be positive, got {self.learning_rate}")
        if not self.data:
            raise ConfigError("data: no story source given (a StoryFrames folder or hub id, or a run folder)")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _choice(name: str, value, known) -> None:
    if value not in known:
        raise ConfigError(f"{name}: unknown value {value!r}; known: {', '.join(known)}")


def field_types() -> dict[str, object]:
    return typing.get_type_hints(TrainConfig)


def coerce(name: str, value, where: str):
    """`value` as the type of field `name`; ConfigError naming `where` and the field otherwise."""
    hint = field_types()[name]
    args = typing.get_args(hint)
    optional = type(None) in args
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{where}: {name} may not be null")
    base = next((a for a in args if a is not type(None)), hint) if optional else hint
    if typing.get_origin(base) is list:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
            raise ConfigError(f"{where}: {name} must be a list of strings, got {value!r}")
        return [str(v) for v in value]
    return _scalar(name, base, value, where)


def _scalar(name: str, base, value, where: str):
    if base is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: {name} must be true or false, got {value!r}")
    if base is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: {name} must be an integer, got {value!r}")
    if base is float:
        if isinstance(value, str):  # YAML 1.1 reads "5e-3" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where}: {name} must be a number, got {value!r}")
    if isinstance(value, bool) and name == "bf16":  # YAML reads `bf16: true` as a boolean
        return "true" if value else "false"
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise ConfigError(f"{where}: {name} must be a string, got {value!r}")


def parse_override(text: str) -> tuple[str, object]:
    """`key=value` -> (key, YAML-parsed value); ConfigError naming the override otherwise."""
    key, sep, raw = text.partition("=")
    key = key.strip().lstrip("-").replace("-", "_")
    if not sep or not key:
        raise ConfigError(f"override {text!r}: expected key=value")
    if key not in field_types():
        raise ConfigError(f"override {text!r}: unknown field {key!r}; known: {', '.join(field_types())}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as err:
        raise ConfigError(f"override {text!r}: not a YAML value: {str(err).splitlines()[0]}") from None
    return key, coerce(key, value, f"override {text!r}")


def load_config(recipe: str | Path | None, overrides: list[str] = ()) -> TrainConfig:
    """The recipe's fields over the defaults, then the overrides; validated."""
    values: dict = {}
    if recipe is not None:
        values = _read_recipe(Path(recipe))
    for text in overrides:
        key, value = parse_override(text)
        values[key] = value
    config = TrainConfig(**values)
    config.validate()
    return config


def _read_recipe(path: Path) -> dict:
    raw = read_yaml(path, ConfigError, what="recipe file")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a recipe is a mapping of field: value, got {type(raw).__name__}")
    known = field_types()
    values = {}
    for key, value in raw.items():
        if key not in known:
            raise ConfigError(f"{path}: unknown field {key!r}; known: {', '.join(known)}")
        values[key] = coerce(key, value, str(path))
    return values
