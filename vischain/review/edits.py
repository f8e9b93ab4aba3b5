"""Edits: each one a new revision of a task's task.json, validated before it is saved, never half applied.

An edit (a new correct choice, new texts, another image in a slot) is checked the way `vischain
validate` checks a task (schema, rules, images, provenance, licence) on a staged copy of the task
folder in RUN/.review-staging/, and a swapped-in image against the run-wide rule too (a retrieved
image, by SHA-256 or pHash, in one slot of the run only); an edit that fails is refused with the
problems and changes nothing. One that passes is saved in this order, each step safe to be killed after:

    1. a swapped-in image is written into the task folder under a new name, then its provenance line
       is appended (a kill here leaves an unused file and a spare line: the run still validates);
    2. one review.sqlite transaction records the revision texts and the `edit` event;
    3. task.json is replaced atomically.

A kill between 2 and 3 leaves task.json one revision behind the log; `reconcile` (run when the
server starts, and before every edit of a task) finishes the save. A task.json changed by anything
else is recorded as an `external` revision, so history never silently forks.

Two people editing one task: each edit names the revision it was made on; the second is refused
with a conflict instead of overwriting the first.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from schemas.durable_files import write_atomically
from schemas.licences import DEFAULT_ALLOW, LicencePolicy
from schemas.provenance import ProvenanceLine
from schemas.rules import task_problems
from schemas.run_claims import NEAR_DUPLICATE_BITS
from schemas.schema_check import schema_problems
from schemas.task import Task, task_images, task_json_text, task_texts, task_turns, with_image, with_text, with_truth
from vischain.review.candidates import SwapCandidate, slot_key, task_image_lines
from vischain.review.catalog import Catalog
from vischain.review.records import Conflict, Reviewer
from vischain.review.store import ReviewStore, text_sha256

STAGING = ".review-staging"
"""Run-relative folder where edits are staged to be validated; hidden, so no task walk ever sees it."""


class EditRefused(Exception):
    """The edit would make the task invalid (or changes nothing); nothing was saved."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True)
class NewImage:
    """An image a swap brings into the task folder."""

    name: str
    """Its file name in the task folder."""
    source: Path
    """The pool file it is copied from."""
    line: ProvenanceLine
    """Its provenance line (file: tasks/KIND/ID/NAME)."""
    replaces: str
    """The file name it takes the place of."""


@dataclass(frozen=True)
class Change:
    """What an edit does to the task, before it is checked."""

    task: Task
    detail: dict
    """Stored with the `edit` event: what changed, from what, to what."""
    image: NewImage | None = None


class Editor:
    def __init__(self, catalog: Catalog, store: ReviewStore):
        self.catalog = catalog
        self.store = store
        config = catalog.store.run.get("config", {})
        licences = config.get("licences", {})
        self.policy = LicencePolicy(allow=frozenset(licences.get("allow", DEFAULT_ALLOW)) or DEFAULT_ALLOW,
                                    accept_unverified=bool(licences.get("accept_unverified", False)))
        # As validate reads it: how close two pHashes may be before the images count as one (-1: not checked).
        self.near_duplicate_bits = int(((config.get("profile_config") or {}).get("search") or {}).get(
            "near_duplicate_bits", NEAR_DUPLICATE_BITS))
        # One edit at a time in this process, task.json write included (the transaction alone ends before it).
        self._lock = threading.Lock()

    # ---- the three edits ---------------------------------------------------------------------------

    def change_truth(self, reviewer: Reviewer, kind: str, task_id: str, revision_seen: int, turn_pointer: str,
                     label: str) -> int:
        """Make `label` the answer of the turn at `turn_pointer`. Returns the new revision number."""
        def change(task: Task) -> Change:
            turn = next((t for t in task_turns(kind, task) if t.pointer == turn_pointer), None)
            if turn is None:
                raise EditRefused([f"{turn_pointer}: no such question in this task"])
            try:
                moved = with_truth(kind, task, turn_pointer, label)
            except KeyError as err:
                raise EditRefused([err.args[0]]) from None
            return Change(moved, {"what": "truth", "pointer": turn_pointer, "from": turn.truth, "to": label})
        return self._save(reviewer, kind, task_id, revision_seen, change)

    def change_texts(self, reviewer: Reviewer, kind: str, task_id: str, revision_seen: int,
                     texts: dict[str, str]) -> int:
        """Set prose fields (JSON pointer -> text); the fields left as they were are not part of the edit."""
        def change(task: Task) -> Change:
            edited, changes = task, []
            for pointer, text in texts.items():
                try:
                    new = with_text(kind, edited, pointer, text)
                except KeyError as err:
                    raise EditRefused([err.args[0]]) from None
                old = {field.pointer: field.text for field in task_texts(kind, edited)}[pointer]
                if old != text:
                    changes.append({"pointer": pointer, "from": old, "to": text})
                edited = new
            return Change(edited, {"what": "text", "changes": changes})
        return self._save(reviewer, kind, task_id, revision_seen, change)

    def swap_image(self, reviewer: Reviewer, kind: str, task_id: str, revision_seen: int, pointer: str,
                   candidate: SwapCandidate) -> int:
        """Put a pool image in the slot at `pointer`, with a copy of its provenance line."""
        if candidate.refusal:
            raise EditRefused([candidate.refusal])

        def change(task: Task) -> Change:
            images = dict(task_images(task))
            if pointer not in images:
                raise EditRefused([f"{pointer}: not an image of this task"])
            revision = self.store.state(kind, task_id).revision + 1
            validator = {"verdict": "yes", "reason": f"swapped in during review by {reviewer.name}",
                         "model": f"human:{reviewer.name}"}
            known = self.catalog.store.provenance_by_file()
            for attempt in range(1, 100):  # a name whose provenance line, if any, is this very line
                suffix = f".r{revision}" + (f"-{attempt}" if attempt > 1 else "")
                name = f"{slot_key(images[pointer])}{suffix}{Path(candidate.file).suffix.lower()}"
                line = {**candidate.provenance, "file": f"tasks/{kind}/{task_id}/{name}", "validator": validator}
                if known.get(line["file"]) in (None, line):
                    break
            return Change(with_image(task, pointer, name),
                          {"what": "swap", "pointer": pointer, "from": images[pointer], "to": name,
                           "sha256": candidate.sha256},
                          NewImage(name, self.catalog.root / candidate.file, line, images[pointer]))
        return self._save(reviewer, kind, task_id, revision_seen, change)

    # ---- saving --------------------------------------------------------------------------------------

    def _save(self, reviewer: Reviewer, kind: str, task_id: str, revision_seen: int,
              make: Callable[[Task], Change]) -> int:
        folder = self.catalog.store.task_folder(kind, task_id)
        with self._lock:
            with self.store.transaction() as db:  # committed on its own: a refused edit must not undo it
                self.reconcile(db, kind, task_id)
            with self.store.transaction() as db:
                current = self.store.state(kind, task_id, db).revision
                text = (folder / "task.json").read_text(encoding="utf-8")
                if current != revision_seen:
                    raise Conflict(self.store.conflict_message(db, kind, task_id, revision_seen, current))
                change = make(json.loads(text))
                new_text = task_json_text(change.task)
                if new_text == text:
                    raise EditRefused(["nothing changed: the edit gives the task it already is"])
                problems = self.problems(kind, task_id, change)
                if problems:
                    raise EditRefused(problems)
                if change.image:
                    new = change.image
                    write_atomically(folder / new.name, new.source.read_bytes())
                    if self.catalog.store.provenance_by_file().get(new.line["file"]) != new.line:  # once per file
                        self.catalog.store.append_provenance([new.line])
                    self.catalog.images.add(new.line["file"], new.line["sha256"])
                if not self.store.revisions(kind, task_id, db):
                    self.store.add_revision(db, kind, task_id, current, text, None)
                event_id = self.store.record(db, reviewer, kind, task_id, "edit", current + 1, change.detail)
                self.store.add_revision(db, kind, task_id, current + 1, new_text, event_id)
            write_atomically(folder / "task.json", new_text)
        return current + 1

    def problems(self, kind: str, task_id: str, change: Change) -> list[str]:
        """What `vischain validate` would say about the task folder after the change, from a staged copy."""
        folder = self.catalog.store.task_folder(kind, task_id)
        relative = self.catalog.relative(folder)
        provenance = self.catalog.store.provenance_by_file()
        (self.catalog.root / STAGING).mkdir(exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f"{kind}-{task_id}-", dir=self.catalog.root / STAGING))
        staged = self.catalog.relative(staging)
        try:
            lines = {}
            for _, name in task_images(change.task):
                if change.image and name == change.image.name:
                    shutil.copyfile(change.image.source, staging / name)
                    line = change.image.line
                else:
                    _link_or_copy(folder / name, staging / name)
                    line = provenance.get(f"{relative}/{name}")
                if line:
                    lines[f"{staged}/{name}"] = line
            (staging / "task.json").write_text(task_json_text(change.task), encoding="utf-8")
            found = task_problems(staging, lines, self.catalog.root, self.policy)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        problems = [f"{p.pointer or '/'}: {p.message}".replace(staged, relative) for p in found]
        if change.image:
            problems += [str(p) for p in schema_problems("provenance", change.image.line, "its provenance line")]
            problems += self.shared_image_problems(kind, task_id, change.image)
        return problems

    def shared_image_problems(self, kind: str, task_id: str, image: NewImage) -> list[str]:
        """validate's run-wide rule for a swapped-in image: a retrieved image (same SHA-256, or a pHash within
        the run's distance) may be in one slot of the run. Painted images are exempt, as validate has it."""
        line = image.line
        if line["synthetic"]:
            return []
        replaced = f"tasks/{kind}/{task_id}/{image.replaces}"
        problems = []
        for file, other in task_image_lines(self.catalog).items():
            if other["synthetic"] or file == replaced:
                continue  # the image the swap replaces is leaving the run
            distance = bin(int(other["phash"], 16) ^ int(line["phash"], 16)).count("1")
            if other["sha256"] == line["sha256"]:
                problems.append(f"{line['file']} would be the same image as {file}; a retrieved image may be in "
                                "one slot of a run")
            elif 0 <= self.near_duplicate_bits and distance <= self.near_duplicate_bits:
                problems.append(f"{line['file']} would be a near duplicate of {file} (pHash distance {distance}); "
                                "a retrieved image may be in one slot of a run")
        return problems

    # ---- recovery ------------------------------------------------------------------------------------

    def reconcile(self, db: sqlite3.Connection, kind: str, task_id: str) -> Reconciled:
        """Inside a transaction: the task's current revision and text, after finishing a save a kill cut
        short (task.json one revision behind the log) or recording a change made outside review."""
        path = self.catalog.store.task_folder(kind, task_id) / "task.json"
        on_disk = path.read_text(encoding="utf-8")
        revisions = self.store.revisions(kind, task_id, db)
        if not revisions or revisions[-1].sha256 == text_sha256(on_disk):
            return Reconciled(self.store.state(kind, task_id, db).revision, on_disk, None)
        latest = revisions[-1]
        if len(revisions) > 1 and revisions[-2].sha256 == text_sha256(on_disk):
            write_atomically(path, latest.text)  # the save a kill interrupted after its commit
            return Reconciled(latest.number, latest.text, "finished")
        event_id = self.store.record(db, None, kind, task_id, "external", latest.number + 1,
                                     {"sha256": text_sha256(on_disk)})
        self.store.add_revision(db, kind, task_id, latest.number + 1, on_disk, event_id)
        return Reconciled(latest.number + 1, on_disk, "external")

    def reconcile_all(self) -> int:
        """Reconcile every task that has revisions, and drop staged copies a killed server left; returns how
        many tasks needed it. Run when the server starts."""
        shutil.rmtree(self.catalog.root / STAGING, ignore_errors=True)
        repaired = 0
        for kind, task_id in self.store.revised_tasks():
            if self.catalog.entry(kind, task_id) is None:
                continue  # removed from the run since; its history stays in the log
            with self._lock, self.store.transaction() as db:
                repaired += self.reconcile(db, kind, task_id).repair is not None
        return repaired


@dataclass(frozen=True)
class Reconciled:
    revision: int
    text: str
    repair: str | None
    """None, "finished" (an interrupted save completed) or "external" (a change outside review recorded)."""


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link costs no copy; a file system without links gets a copy. A missing file stays missing
    (validation says so)."""
    if not source.is_file():
        return
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
