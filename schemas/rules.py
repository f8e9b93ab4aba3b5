"""What makes a task folder or a run folder valid: its schema, then the rules a schema cannot state.

    report = validate_path(Path("runs/eng"))          # a run, one task folder, or a folder of tasks
    report.problems                                   # [Problem(file, pointer, message), ...]

Rules per kind: exactly one correct choice (ITMR), labels that exist and are unique (ICIR, IOMR).
Per image: the file exists and decodes; in a run folder it has a provenance line whose sha256
matches its bytes and whose licence the run's policy admits.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from schemas.errors import UsageError
from schemas.licences import DEFAULT_ALLOW, LicencePolicy
from schemas.provenance import ProvenanceLine, licence_problems
from schemas.run_store import RunStore
from schemas.schema_check import Problem, schema_problems
from schemas.task import detect_kind, task_folders, task_images

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def task_problems(folder: Path, provenance: dict[str, ProvenanceLine] | None, run_root: Path | None = None,
                  policy: LicencePolicy = LicencePolicy(), *, decode: bool = True) -> list[Problem]:
    """Everything wrong with one task folder. `provenance` maps run-relative file -> line (None: not checked).

    With provenance, each image's bytes must hash to its line's sha256. `decode=False` skips decoding
    images, for a caller that decoded those very bytes already (generate's check node: the fetcher
    decoded every pool image, and the hash proves the task's copy is the same bytes)."""
    file = str(folder / "task.json")
    try:
        task = json.loads((folder / "task.json").read_text())
    except FileNotFoundError:
        return [Problem(file, "", "task.json is missing")]
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        return [Problem(file, "", f"not valid JSON: {err}")]
    kind = detect_kind(task)
    if kind is None:
        return [Problem(file, "", "not a task: expected questions (itmr), question_start_label (icir) "
                                  "or initial_condition (iomr)")]
    problems = schema_problems(kind, task, file)
    if problems:  # the semantic checks below assume the schema's shape
        return problems
    problems += {"itmr": _itmr_rules, "icir": _icir_rules, "iomr": _iomr_rules}[kind](task, file)
    for pointer, name in task_images(task):
        problems += _image_problems(folder, name, file, pointer, provenance, run_root, policy, decode)
    return problems


def _itmr_rules(task: dict, file: str) -> list[Problem]:
    problems = _unique([q["original_id"] for q in task["questions"]], "/questions/{}/original_id", file)
    for q, question in enumerate(task["questions"]):
        correct = sum(choice["correct"] for choice in question["choices"])
        if correct != 1:
            problems.append(Problem(file, f"/questions/{q}/choices",
                                    f"exactly one choice must be correct, found {correct}"))
    return problems


def _icir_rules(task: dict, file: str) -> list[Problem]:
    steps = task["steps"]
    problems = _unique([s["step"] for s in steps], "/steps/{}/step", file)
    if task["question_start_label"] not in {s["step"] for s in steps}:
        problems.append(Problem(file, "/question_start_label",
                                f"names no step: {task['question_start_label']} not in {[s['step'] for s in steps]}"))
    for s, step in enumerate(steps):
        ids = [image["image_id"] for image in step["images"]]
        problems += _unique(ids, f"/steps/{s}/images/{{}}/image_id", file)
        if step["answer_label"] not in ids:
            problems.append(Problem(file, f"/steps/{s}/answer_label",
                                    f"names no image: {step['answer_label']} not in {ids}"))
    return problems


def _iomr_rules(task: dict, file: str) -> list[Problem]:
    problems = _unique([s["step"] for s in task["steps"]], "/steps/{}/step", file)
    for s, step in enumerate(task["steps"]):
        letters = [option["option"] for option in step["options"]]
        problems += _unique(letters, f"/steps/{s}/options/{{}}/option", file)
        if step["correct_option"] not in letters:
            problems.append(Problem(file, f"/steps/{s}/correct_option",
                                    f"names no option: {step['correct_option']!r} not in {letters}"))
    return problems


def _unique(values: list, pointer_template: str, file: str) -> list[Problem]:
    seen, problems = set(), []
    for i, value in enumerate(values):
        if value in seen:
            problems.append(Problem(file, pointer_template.format(i), f"duplicate label {value!r}"))
        seen.add(value)
    return problems


def _image_problems(folder: Path, name: str, file: str, pointer: str, provenance: dict[str, ProvenanceLine] | None,
                    run_root: Path | None, policy: LicencePolicy, decode: bool) -> list[Problem]:
    path = folder / name
    if not path.is_file():
        return [Problem(file, pointer, f"image file not found: {name}")]
    data = path.read_bytes()  # one read for the decode and the hash
    if decode:
        try:
            with Image.open(io.BytesIO(data)) as image:
                image.load()
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as err:
            return [Problem(file, pointer, f"image does not decode: {name}: {err}")]
    if provenance is None:
        return []
    key = str(path.relative_to(run_root)) if run_root else name
    line = provenance.get(key)
    if line is None:
        return [Problem(file, pointer, f"no provenance line for {key}")]
    if hashlib.sha256(data).hexdigest() != line["sha256"]:
        return [Problem(file, pointer, f"{key}: bytes do not match the provenance sha256 {line['sha256'][:12]}…")]
    return [Problem(file, pointer, f"{key}: {reason}") for reason in licence_problems(line, policy)]


# ---- Whole folders --------------------------------------------------------------------------------

@dataclass
class Report:
    problems: list[Problem] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)
    """Tasks found per kind ("invalid" for a task.json of no kind)."""
    images: int = 0


def validate_path(path: Path, check_provenance: bool = True) -> Report:
    """Validate a run folder (has run.json), one task folder (has task.json), or a folder of task folders."""
    run_root = enclosing_run(path)
    provenance, policy, report = None, LicencePolicy(), Report()
    if run_root is not None:
        provenance, policy = _read_run_extras(run_root, report)
    elif check_provenance:
        report.problems.append(Problem(str(path), "", "not inside a run folder, so no provenance.jsonl to check "
                                                      "licences against (--no-provenance for foreign folders)"))
    for folder in task_folders(path):
        report.problems += task_problems(folder, provenance if check_provenance else None, run_root, policy)
        try:
            kind = detect_kind(json.loads((folder / "task.json").read_text()))
        except (OSError, ValueError):
            kind = None
        report.kinds[kind or "invalid"] = report.kinds.get(kind or "invalid", 0) + 1
        report.images += sum(1 for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if (folder / "plan.json").is_file():
            report.problems += _json_file_problems(folder / "plan.json", "plan")
    return report


def enclosing_run(path: Path) -> Path | None:
    """The run folder (with run.json) that `path` is or lies in, up to three levels up."""
    for candidate in [path, *path.resolve().parents][:4]:
        if (candidate / "run.json").is_file():
            return candidate
    return None


def _read_run_extras(run_root: Path, report: Report) -> tuple[dict, LicencePolicy]:
    provenance = {}
    for name, schema in (("provenance.jsonl", "provenance"), ("failures.jsonl", "failure")):
        path = run_root / name
        if not path.exists():
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as err:
                report.problems.append(Problem(f"{path}:{number}", "", f"not valid JSON: {err.msg}"))
                continue
            report.problems += schema_problems(schema, value, f"{path}:{number}")
            if schema == "provenance" and isinstance(value, dict) and "file" in value:
                provenance[value["file"]] = value
    licences = json.loads((run_root / "run.json").read_text()).get("config", {}).get("licences", {})
    policy = LicencePolicy(allow=frozenset(licences.get("allow", DEFAULT_ALLOW)),
                           accept_unverified=bool(licences.get("accept_unverified", False)))
    return provenance, policy


def _json_file_problems(path: Path, schema: str) -> list[Problem]:
    try:
        value = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        return [Problem(str(path), "", f"not valid JSON: {err.msg}")]
    return schema_problems(schema, value, str(path))


# ---- A run that may be published or exported -----------------------------------------------------

class InvalidRun(UsageError):
    """The run fails `vischain validate`; nothing is written. `problems` are validate's Problem objects."""

    def __init__(self, run_dir: Path, problems: list):
        self.problems = problems
        super().__init__(f"RUN: {run_dir} fails validation ({len(problems)} problem(s)); first: {problems[0]}")


def require_valid_run(run_dir: str | Path) -> RunStore:
    """The run's store, or InvalidRun: a dataset card must never vouch for a run that fails validation."""
    run_dir = Path(run_dir)
    if not (run_dir / "run.json").is_file():
        raise UsageError(f"RUN: {run_dir} is not a run folder (no run.json)")
    report = validate_path(run_dir)
    if report.problems:
        raise InvalidRun(run_dir, report.problems)
    if not sum(report.kinds.values()):
        raise UsageError(f"RUN: {run_dir} has no tasks")
    return RunStore.open(run_dir)
