"""Our own lines only: the library messages vischain knows to be harmless, filtered in one place.

`vischain --verbose COMMAND` skips this and shows everything. Each entry below says where the message
comes from and why it is harmless; anything not listed still reaches the terminal, so a new warning
is seen. Where a message can be avoided by passing a library what it asks for, that is done at the
call instead (and the entry goes).

The filters sit on the loggers that emit the messages, named here before the library is imported
(a logger is created once per name), so `vischain --help` imports nothing heavy.
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass


@dataclass(frozen=True)
class LogNoise:
    logger: str
    """The logger that emits it (logging.getLogger(__name__) of the library module)."""
    pattern: str
    """A regular expression searched in the message."""
    why: str


@dataclass(frozen=True)
class WarningNoise:
    category: type[Warning]
    pattern: str
    """A regular expression matched at the start of the warning message (warnings.filterwarnings)."""
    why: str


LOG_NOISE = (
    LogNoise("transformers.utils.import_utils", r"requires torchvision \(not installed\); falling back to",
             "diffusers imports transformers' CLIP and SigLIP image processors when it loads; without torchvision "
             "transformers falls back to their PIL versions, which are the ones vischain uses on purpose "
             "(agents/backends/hf_loading.py)"),
    LogNoise("transformers.configuration_utils",
             r"Model config: (bos|eos)_token_id must be `None` or an integer within the vocabulary "
             r"\(between 0 and 299\)",
             "tiny:sd's text encoder has a 300-token vocabulary but keeps CLIP's bos/eos ids (49406/49407); the "
             "pipeline never uses them (the tokenizer pads and truncates), and only the tiny model has 300 tokens"),
)

WARNING_NOISE = (
    WarningNoise(FutureWarning, r"`torch_dtype` is deprecated and will be removed in version 1\.0\.0",
                 "diffusers' DiffusionPipeline.from_pretrained renamed torch_dtype to dtype; agents/painter.py "
                 "still passes torch_dtype, which diffusers maps to dtype itself"),
)


class _Drop(logging.Filter):
    def __init__(self, patterns: list[str]):
        super().__init__()
        self.pattern = re.compile("|".join(f"(?:{p})" for p in patterns))

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.pattern.search(record.getMessage())


def quiet_known_noise() -> None:
    """Install the filters above; safe to call more than once."""
    by_logger: dict[str, list[str]] = {}
    for noise in LOG_NOISE:
        by_logger.setdefault(noise.logger, []).append(noise.pattern)
    for name, patterns in by_logger.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _Drop) for f in logger.filters):
            logger.addFilter(_Drop(patterns))
    for noise in WARNING_NOISE:
        warnings.filterwarnings("ignore", message=noise.pattern, category=noise.category)
