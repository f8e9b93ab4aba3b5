"""Join run folders made on several machines (`--shard I/N`), as `vischain merge A B ... --out C` does.

Tasks are renumbered per kind in input order (itmr-0001, ...). A retrieved image may appear once
in a benchmark: each shard deduplicated only its own downloads, so a task that reuses an image
(same SHA-256, or a pHash within the runs' distance) already taken by an earlier task is left out
and listed in failures.jsonl with stage `merge`. The merged run is written beside `--out` and
renamed into place when whole. Provenance lines follow their files; failure lines keep the source run in the id.
The merged run.json records its sources and a licence policy that admits what each source did.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from schemas.errors import UsageError
from schemas.licences import DEFAULT_ALLOW
from schemas.phash_index import PHashIndex
from schemas.run_claims import NEAR_DUPLICATE_BITS
from schemas.run_store import RunStore
from schemas.task import TASK_KINDS, read_task_json, task_images


def open_sources(runs: list[Path], out: Path) -> list[RunStore]:
    if len(runs) < 2:
        raise UsageError("RUNS: give at least two run folders")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"--out: {out} already exists; merge writes a new folder")
    stores = []
    for run in runs:
        if not (run / "run.json").is_file():
            raise UsageError(f"RUNS: {run} is not a run folder (no run.json)")
        if run.resolve() == out.resolve():
            raise UsageError(f"--out: {out} is also an input")
        store = RunStore.open(run)
        if store.status != "complete":
            raise UsageError(f"RUNS: {run} is incomplete (its generate did not finish); re-run that command first")
        stores.append(store)
    return stores


def merge_runs(stores: list[RunStore], out: Path) -> dict:
    """Write the merged run into a hidden sibling of `out` and rename it into place when it is whole:
    a killed merge leaves nothing at `out`, and running it again starts over."""
    staging = out.parent / f".{out.name}.merging"
    if staging.exists():
        shutil.rmtree(staging)  # what a killed merge left
    out.parent.mkdir(parents=True, exist_ok=True)
    target = RunStore.create(staging, merged_config(stores))
    report = _copy_tasks(stores, target)
    target.refresh_counts()
    target.update_run(name=out.name)
    target.set_status("complete")
    if out.exists():
        out.rmdir()  # an empty folder (open_sources refused any other)
    os.rename(staging, out)
    return report


def _copy_tasks(stores: list[RunStore], target: RunStore) -> dict:
    numbers = dict.fromkeys(TASK_KINDS, 0)
    seen: dict[str, str] = {}  # sha256 of a retrieved image -> merged task that has it
    near = PHashIndex(_near_duplicate_bits(stores))
    duplicates = 0
    for store in stores:
        provenance = store.provenance_by_file()
        for ref in store.tasks():
            old = ref.folder.relative_to(store.root).as_posix()
            task = read_task_json(ref.folder)
            lines = {name: provenance[f"{old}/{name}"] for _, name in task_images(task)}
            retrieved = [line for line in lines.values() if not line["synthetic"]]
            taken = [seen[line["sha256"]] for line in retrieved if line["sha256"] in seen]
            taken += [seen[match[0]] for line in retrieved
                      if near.max_bits >= 0 and (match := near.first_within(int(line["phash"], 16)))]
            if taken:
                duplicates += 1
                target.append_failure({"task_id": f"{store.root.name}/{ref.task_id}", "kind": ref.kind,
                                       "topic": None, "stage": "merge",
                                       "reason": f"an image (or a near duplicate of it) is already in {taken[0]}"})
                continue
            numbers[ref.kind] += 1
            task_id = f"{ref.kind}-{numbers[ref.kind]:04d}"
            new = f"tasks/{ref.kind}/{task_id}"
            target.append_provenance([{**line, "file": f"{new}/{name}"} for name, line in lines.items()])
            extra = {"plan.json": json.loads((ref.folder / "plan.json").read_text())} \
                if (ref.folder / "plan.json").is_file() else None
            target.write_task(ref.kind, task_id, task,
                              {name: ref.folder / name for name in lines}, extra_json=extra)
            for line in retrieved:
                seen[line["sha256"]] = new
                near.add(int(line["phash"], 16), line["sha256"])
        for line in store.read_jsonl("failures.jsonl"):
            target.append_failure({**line, "task_id": f"{store.root.name}/{line['task_id']}"})
    return {"tasks": {k: n for k, n in numbers.items() if n}, "duplicates": duplicates}


def _near_duplicate_bits(stores: list[RunStore]) -> int:
    """The smallest distance any source used: the merged run must pass each source's rule."""
    found = [s.run.get("config", {}).get("profile_config", {}).get("search", {}).get("near_duplicate_bits")
             for s in stores]
    return min([bits for bits in found if isinstance(bits, int)] or [NEAR_DUPLICATE_BITS])


def merged_config(stores: list[RunStore]) -> dict:
    configs = [store.run.get("config", {}) for store in stores]
    allow = sorted({licence for c in configs for licence in c.get("licences", {}).get("allow", [])})
    domains = sorted({c.get("domain") for c in configs if c.get("domain")})
    return {"command": "merge", "sources": [{"folder": str(s.root), "config": c} for s, c in zip(stores, configs)],
            "domain": domains[0] if len(domains) == 1 else "mixed",
            "profile": configs[0].get("profile"), "models": configs[0].get("models"),
            "prompts_hash": configs[0].get("prompts_hash"),
            "licences": {"allow": allow or sorted(DEFAULT_ALLOW),
                         "accept_unverified": any(c.get("licences", {}).get("accept_unverified") for c in configs)}}
