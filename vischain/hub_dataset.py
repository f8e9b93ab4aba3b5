"""Publish a run as a Hugging Face dataset: a folder of parquet shards and a card, then one commit.

    runs/eng  ->  DIR/README.md                                the card (vischain.dataset_card)
                  DIR/data/itmr/test-00000-of-00001.parquet    one config per task kind: itmr, icir, iomr
                  DIR/data/provenance/...                      one row per image: source, licence, creator
                  DIR/data/stories/...                         ImageChain stories from the ITMR tasks

    folder = build_dataset_folder("runs/eng", "out/eng")      # offline; datasets.load_dataset("out/eng", "itmr")
    upload_to_hub(folder, "me/eng-chain", private=True)       # create_repo + one create_commit

Task rows mirror task.json (nested lists and structs) with every image field an `Image` feature,
plus `task_id` and `domain` columns. Images are embedded as their original file bytes, so a row
decodes to exactly the pixels of the run's files and the folder loads anywhere.
"""

from __future__ import annotations

import copy
import json
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset, Features, Image, List, Value
from datasets.table import embed_table_storage
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, get_token
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

from imagechain.data.run_stories import iter_run_stories
from schemas.errors import DataError, UsageError
from schemas.rules import require_valid_run
from schemas.run_store import RunStore
from schemas.task import TASK_KINDS, read_task_json, task_domain, task_images
from vischain.dataset_card import SPLIT, build_card
from vischain.review.metrics import publishable_tasks, quality_control

MAX_SHARD_BYTES = 500 * 1024 * 1024
"""The Hub's own default shard size (datasets.config.MAX_SHARD_SIZE): small enough to stream."""

_TEXT, _INT, _FLAG = Value("string"), Value("int64"), Value("bool")
_IDS = {"task_id": _TEXT, "domain": _TEXT}

TASK_FEATURES = {
    "itmr": Features({**_IDS, "initial_scene_description": _TEXT, "questions": List({
        "original_id": _TEXT, "question": _TEXT, "task_description": _TEXT,
        "choices": List({"image": Image(), "correct": _FLAG}), "metadata": _TEXT}), "metadata": _TEXT}),
    "icir": Features({**_IDS, "task": _TEXT, "question_start_label": _INT, "steps": List({
        "step": _INT, "description": _TEXT,
        "images": List({"image_id": _INT, "image_description": _TEXT, "image": Image()}),
        "answer_label": _INT}), "metadata": _TEXT}),
    "iomr": Features({**_IDS, "initial_condition": Image(), "steps": List({
        "step": _INT, "condition": Image(), "options": List({"option": _TEXT, "image": Image()}),
        "correct_option": _TEXT}), "metadata": _TEXT}),
}
PROVENANCE_FEATURES = Features({
    "file": _TEXT, "kind": _TEXT, "task_id": _TEXT, "sha256": _TEXT, "phash": _TEXT, "provider": _TEXT,
    "source_url": _TEXT, "page_url": _TEXT,
    "licence": {"id": _TEXT, "version": _TEXT, "url": _TEXT, "verified": _FLAG, "filter": _TEXT},
    "creator": _TEXT, "attribution": _TEXT, "synthetic": _FLAG,
    # Open-ended objects in the schema: JSON strings keep every key, as task metadata does.
    "generator": _TEXT, "validator": _TEXT,
})
STORY_FEATURES = Features({
    "story_id": _TEXT, "source": _TEXT, "task_id": _TEXT, "domain": _TEXT,
    "scenes": List({"frames": List(Image()), "description": _TEXT}), "metadata": _TEXT,
})


@dataclass
class Table:
    """One config before it is written: rows (image fields as file paths) and their features."""

    features: Features
    rows: list[dict] = field(default_factory=list)
    row_bytes: list[int] = field(default_factory=list)
    """Image bytes per row, to cut shards near MAX_SHARD_BYTES."""


@dataclass
class DatasetFolder:
    path: Path
    rows: dict[str, int]
    """config name -> rows written (configs with no rows are left out)."""
    files: list[str]
    """Every file written, relative to `path`, README.md included."""


# ---- Run -> rows ---------------------------------------------------------------------------------

def task_row(folder: Path, task_id: str, task: dict) -> dict:
    """task.json as a dataset row: each image name replaced by its file's path (embedded on write)."""
    row = {"task_id": task_id, "domain": task_domain(task) or "unknown", **copy.deepcopy(task)}
    for pointer, name in task_images(task):
        *parents, last = pointer.strip("/").split("/")
        node = row
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[last] = folder / name
    return row


def provenance_row(line: dict) -> dict:
    parts = Path(line["file"]).parts  # tasks/<kind>/<task id>/<name>
    licence = line.get("licence")
    return {
        **{key: line.get(key) for key in PROVENANCE_FEATURES},
        "kind": parts[1] if len(parts) == 4 else None, "task_id": parts[2] if len(parts) == 4 else None,
        "licence": {key: licence.get(key) for key in PROVENANCE_FEATURES["licence"]} if licence else None,
        "generator": json.dumps(line["generator"]) if line.get("generator") else None,
        "validator": json.dumps(line["validator"]) if line.get("validator") else None,
    }


def itmr_stories(store: RunStore) -> list[dict]:
    """ImageChain stories: each ITMR task's correct images in order, described by its plan.json.

    A task without plan.json has no scene descriptions, so it gives no story (the card counts stories).
    """
    try:
        stories = list(iter_run_stories(store.root, kinds=("itmr",), require_plan=False))
    except DataError as err:
        raise UsageError(str(err)) from None
    rows = []
    for story in stories:
        task_dir = Path(story.metadata["task_dir"])
        task = read_task_json(task_dir)
        metadata = {key: story.metadata[key] for key in ("title", "topic", "initial_scene_description")}
        rows.append({"story_id": story.story_id, "source": story.source, "task_id": task_dir.name,
                     "domain": task_domain(task) or "unknown",
                     "metadata": json.dumps(metadata, ensure_ascii=False),
                     "scenes": [{"frames": [Path(f) for f in scene.frames], "description": scene.description}
                                for scene in story.scenes]})
    return rows


def run_tables(store: RunStore, keep: set[tuple[str, str]] | None = None) -> dict[str, Table]:
    """Every config of the dataset, in card order: the task kinds, then provenance, then stories.
    `keep`: the (kind, task_id) of the tasks to publish (the review's verdict); None publishes every task."""
    tables = {kind: Table(TASK_FEATURES[kind]) for kind in TASK_KINDS}
    for ref in store.tasks():
        if keep is not None and (ref.kind, ref.task_id) not in keep:
            continue
        task = read_task_json(ref.folder)
        tables[ref.kind].rows.append(task_row(ref.folder, ref.task_id, task))
        tables[ref.kind].row_bytes.append(sum((ref.folder / name).stat().st_size for _, name in task_images(task)))
    provenance = published_provenance(store, keep)
    tables["provenance"] = Table(PROVENANCE_FEATURES, [provenance_row(line) for line in provenance],
                                 [0] * len(provenance))
    stories = [story for story in itmr_stories(store) if keep is None or ("itmr", story["task_id"]) in keep]
    story_bytes = [sum(frame.stat().st_size for scene in story["scenes"] for frame in scene["frames"])
                   for story in stories]
    tables["stories"] = Table(STORY_FEATURES, stories, story_bytes)
    return tables


def published_provenance(store: RunStore, keep: set[tuple[str, str]] | None) -> list[dict]:
    """Provenance lines of the published images: all of them, or with `keep` only those the kept tasks'
    task.json files name (a task left out, or an image a review edit swapped out, takes its line along)."""
    lines = store.read_jsonl("provenance.jsonl")
    if keep is None:
        return lines
    shown = {f"tasks/{ref.kind}/{ref.task_id}/{name}" for ref in store.tasks() if (ref.kind, ref.task_id) in keep
             for _, name in task_images(read_task_json(ref.folder))}
    return [line for line in lines if line["file"] in shown]


# ---- Rows -> parquet shards + card ---------------------------------------------------------------

def write_config(name: str, table: Table, out_dir: Path, max_shard_bytes: int = MAX_SHARD_BYTES) -> list[str]:
    """Write one config as parquet shards under data/<name>/, images embedded; returns the files' paths."""
    dataset = Dataset.from_list(table.rows, features=table.features)
    shards = max(1, min(len(table.rows), math.ceil(sum(table.row_bytes) / max_shard_bytes)))
    files = []
    for index in range(shards):
        shard = dataset.shard(num_shards=shards, index=index, contiguous=True)
        # As datasets' push_to_hub does: read each image file into the row, so no path is left behind.
        shard = shard.with_format("arrow").map(embed_table_storage, batched=True, keep_in_memory=True)
        relative = f"data/{name}/{SPLIT}-{index:05d}-of-{shards:05d}.parquet"
        (out_dir / relative).parent.mkdir(parents=True, exist_ok=True)
        shard.with_format(None).to_parquet(str(out_dir / relative))
        files.append(relative)
    return files


CONFIGS = (*TASK_KINDS, "provenance", "stories")
"""Every config run_tables builds, in card order (one without rows is left out of the folder)."""


def build_dataset_folder(run_dir: str | Path, out_dir: str | Path, *, repo_id: str | None = None,
                         max_shard_bytes: int = MAX_SHARD_BYTES, include_unreviewed: bool = False,
                         step: Callable[[], None] = lambda: None) -> DatasetFolder:
    """Validate the run, then write the dataset (shards + README.md) into `out_dir`, which must be new or empty.
    A run with a review (review.sqlite) publishes only its accepted, quiz-passed tasks unless `include_unreviewed`.
    `step` is called once per config of CONFIGS, written or empty (a progress bar's advance)."""
    store = require_valid_run(run_dir)
    keep = publishable_tasks(store.root, include_unreviewed)
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise UsageError(f"--local-dir: {out_dir} exists and is not an empty folder (stale shards would be "
                         "loaded with the new ones); give a new folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = run_tables(store, keep)
    files, rows = [], {}
    for name, table in tables.items():
        if table.rows:
            files += write_config(name, table, out_dir, max_shard_bytes)
            rows[name] = len(table.rows)
        step()
    kind_domains = Counter((kind, row["domain"]) for kind in TASK_KINDS for row in tables[kind].rows)
    published = {(kind, row["task_id"]) for kind in TASK_KINDS for row in tables[kind].rows}
    card = build_card(store.run, kind_domains, published_provenance(store, keep), rows, repo_id,
                      quality=quality_control(store.root, published, include_unreviewed))
    card.save(out_dir / "README.md")
    return DatasetFolder(out_dir, rows, ["README.md", *files])


# ---- Folder -> Hub -------------------------------------------------------------------------------

def upload_to_hub(folder: DatasetFolder, repo_id: str, *, private: bool = False, revision: str | None = None,
                  commit_message: str | None = None):
    """Create the dataset repo if needed and send the folder as one commit; returns the CommitInfo.

    One commit, not `upload_folder`: with hf_xet installed that splits big folders into several
    commits, and a reader must never see half a dataset. Shards of an earlier publish that this one
    does not overwrite are deleted in the same commit, or `data/<config>/*.parquet` would load both.
    """

    if get_token() is None:  # looked up by huggingface_hub itself: HF_TOKEN, then the login cache
        raise UsageError("--repo: no Hugging Face token; set HF_TOKEN or run `hf auth login`")
    api = HfApi()
    message = commit_message or f"Publish {folder.path.name} with vischain ({_rows_text(folder.rows)})"
    step = "create_repo"
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        if revision:
            step = "create_branch"
            api.create_branch(repo_id, repo_type="dataset", branch=revision, exist_ok=True)
        step = "list_repo_files"
        stale = [path for path in api.list_repo_files(repo_id, repo_type="dataset", revision=revision)
                 if path.startswith("data/") and path not in folder.files]
        step = "create_commit"
        operations = [CommitOperationDelete(path_in_repo=path) for path in stale]
        operations += [CommitOperationAdd(path_in_repo=path, path_or_fileobj=str(folder.path / path))
                       for path in folder.files]
        return api.create_commit(repo_id, operations, commit_message=message, repo_type="dataset",
                                 revision=revision)
    except HfHubHTTPError as err:  # the status and the Hub's own words; the token is never in either
        said = (err.server_message or err.response.reason_phrase or "").strip().split("\n")[0]
        raise UsageError(f"--repo {repo_id}: {step} failed: {err.response.status_code} {said}".strip()) from None
    except (OfflineModeIsEnabled, ValueError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UsageError(f"--repo {repo_id}: {step} failed: {first_line}") from None


def _rows_text(rows: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in rows.items())
