"""`vischain export`: a run as a self-contained folder another tool reads, one folder per format.

    result = export_run(store, "trl", Path("runs/demo/exports/trl"))
    result.folder, result.tasks, result.files

| format         | for                  | data file(s)                                  |
| -------------- | -------------------- | --------------------------------------------- |
| trl            | trl's SFTTrainer     | metadata.jsonl (datasets imagefolder) + images |
| llamafactory   | LLaMA-Factory        | vischain.jsonl + dataset_info.json + images    |
| vlmevalkit-mt  | VLMEvalKit           | NAME.tsv (images inside) + the dataset class   |
| lmms-eval      | lmms-eval            | NAME.yaml + utils.py + vischain.jsonl + images |
| jsonl-messages | anything else        | conversations.jsonl + images                   |

Every format is written from the same conversations (vischain/exports/conversation.py), which are
what `vischain eval` sends a model; each folder has a README.md with the command for its tool. Image
paths are relative to the folder, so it can be moved or copied elsewhere whole.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from schemas.errors import UsageError
from schemas.run_store import RunStore
from vischain.exports import jsonl_messages, llamafactory, lmms_eval, trl, vlmevalkit
from vischain.exports.conversation import export_conversations

FORMATS = ("trl", "llamafactory", "vlmevalkit-mt", "lmms-eval", "jsonl-messages")


@dataclass(frozen=True)
class ExportResult:
    folder: Path
    tasks: int
    files: list[str]
    """The data and README files written, relative to `folder` (images not listed)."""


def dataset_name(run_name: str) -> str:
    """The name a tool registers the export under: `vischain_<run>`, letters, digits and _ only."""
    return "vischain_" + (re.sub(r"[^A-Za-z0-9]+", "_", run_name).strip("_") or "run")


def default_folder(run: Path, fmt: str) -> Path:
    return run / "exports" / fmt


def export_run(store: RunStore, fmt: str, out: Path, step: Callable[[], None] = lambda: None) -> ExportResult:
    """Write the run in `fmt` into `out` (new or empty); `step` is called once per task."""
    if fmt not in FORMATS:
        raise UsageError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"--out: {out} exists and is not an empty folder; give a new folder")
    name = dataset_name(store.root.resolve().name)
    out.mkdir(parents=True, exist_ok=True)
    try:
        if fmt == "vlmevalkit-mt":
            # The TSV carries its images as base64: they are labelled in a scratch folder, not kept.
            with tempfile.TemporaryDirectory(prefix="vischain-export-") as scratch:
                conversations = export_conversations(store, Path(scratch), step)
                files = vlmevalkit.write(conversations, out, name, Path(scratch))
        else:
            conversations = export_conversations(store, out, step)
            writer = {"trl": trl.write, "llamafactory": llamafactory.write, "lmms-eval": lmms_eval.write,
                      "jsonl-messages": jsonl_messages.write}[fmt]
            files = writer(conversations, out, name)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)  # no half export for a tool to load
        raise
    return ExportResult(out, len(conversations), files)
