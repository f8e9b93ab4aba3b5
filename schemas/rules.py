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
from schemas.phash_index import PHashIndex
from schemas.provenance import ProvenanceLine, licence_problems
from schemas.run_claims import NEAR_DUPLICATE_BITS
from schemas.run_store import RunStore
from schemas.schema_check import Problem, schema_problems
from schemas.task import detect_kind, read_task_json, task_folders, task_images

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
    """Validate a run folder (has run.json), one task folder (has task.json), or a folder of task folders.

    A whole run folder is also checked for the rules no single task can break: the run finished,
    no half-written task is left, every task image has exactly one provenance line, and no
    retrieved image (by SHA-256, or pHash within the run's distance) is in two slots."""
    path = path.resolve()
    run_root = enclosing_run(path)
    provenance, policy, report = None, LicencePolicy(), Report()
    run = RunFacts()
    if run_root is not None:
        run = _read_run(run_root, report)
        provenance = run.provenance
        policy = run.policy
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
    if run_root is not None and path == run_root:
        report.problems += run_problems(run_root, run)
    return report


def enclosing_run(path: Path) -> Path | None:
    """The run folder (with run.json) that `path` is or lies in, up to three levels up."""
    path = path.resolve()
    for candidate in [path, *path.parents][:4]:
        if (candidate / "run.json").is_file():
            return candidate
    return None


@dataclass
class RunFacts:
    """What a run folder's own files say, read once (lines that fail their schema are left out)."""

    provenance: dict[str, ProvenanceLine] = field(default_factory=dict)
    """file -> its provenance line."""
    line_counts: dict[str, int] = field(default_factory=dict)
    """file -> how many provenance lines name it."""
    policy: LicencePolicy = field(default_factory=LicencePolicy)
    status: str = "complete"
    near_duplicate_bits: int = NEAR_DUPLICATE_BITS


def _read_run(run_root: Path, report: Report) -> RunFacts:
    facts = RunFacts()
    for number, value in _jsonl(run_root / "failures.jsonl", report):
        report.problems += schema_problems("failure", value, f"{run_root / 'failures.jsonl'}:{number}")
    for number, value in _jsonl(run_root / "provenance.jsonl", report):
        problems = schema_problems("provenance", value, f"{run_root / 'provenance.jsonl'}:{number}")
        report.problems += problems
        if not problems:
            facts.provenance[value["file"]] = value
            facts.line_counts[value["file"]] = facts.line_counts.get(value["file"], 0) + 1
    file = run_root / "run.json"
    try:
        run = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        report.problems.append(Problem(str(file), "", f"not valid JSON: {getattr(err, 'msg', err)}"))
        return facts
    problems = schema_problems("run", run, str(file))
    if problems:
        report.problems += problems
        return facts
    config = run["config"]
    licences = config.get("licences", {})
    facts.policy = LicencePolicy(allow=frozenset(licences.get("allow", DEFAULT_ALLOW)) or DEFAULT_ALLOW,
                                 accept_unverified=licences.get("accept_unverified", False))
    facts.status = run.get("status", "complete")
    facts.near_duplicate_bits = config.get("profile_config", {}).get("search", {}).get(
        "near_duplicate_bits", NEAR_DUPLICATE_BITS)
    return facts


def _jsonl(path: Path, report: Report):
    """(line number, value) of each line that is JSON; the others become problems."""
    if not path.exists():
        return
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        report.problems.append(Problem(str(path), "", f"not UTF-8: {err.reason} at byte {err.start}"))
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as err:
            report.problems.append(Problem(f"{path}:{number}", "", f"not valid JSON: {err.msg}"))


def run_problems(run_root: Path, run: RunFacts) -> list[Problem]:
    """The rules of a whole run folder, beyond each task's."""
    problems = []
    if run.status != "complete":
        problems.append(Problem(str(run_root / "run.json"), "/status",
                                "incomplete run: generate or merge did not finish (killed, or still running); "
                                "re-run the same command to finish it"))
    for leftover in sorted((run_root / "tasks").glob("*/.*")):
        problems.append(Problem(str(leftover), "", "half-written task folder left by a killed write "
                                                   "(re-running the command removes it)"))
    task_files = {}
    for folder in task_folders(run_root / "tasks") if (run_root / "tasks").is_dir() else []:
        try:
            task = read_task_json(folder)
        except (OSError, ValueError):
            continue  # the task's own check reports it
        kind = detect_kind(task)
        if kind is None or schema_problems(kind, task):
            continue  # likewise
        for _, name in task_images(task):
            task_files[(folder / name).relative_to(run_root).as_posix()] = folder / "task.json"
    for file, task_file in sorted(task_files.items()):
        if run.line_counts.get(file, 0) > 1:
            problems.append(Problem(str(run_root / "provenance.jsonl"), "",
                                    f"{file}: {run.line_counts[file]} provenance lines; a task image has exactly one"))
    problems += _shared_images(run_root, task_files, run)
    return problems


def _shared_images(run_root: Path, task_files: dict[str, Path], run: RunFacts) -> list[Problem]:
    """A retrieved image may be in one slot of a run: the same SHA-256 twice, or a pHash within the
    run's distance of an earlier one, is a problem (painted images are exempt)."""
    problems, by_sha = [], {}
    index = PHashIndex(run.near_duplicate_bits)
    for file in sorted(task_files):
        line = run.provenance.get(file)
        if line is None or line["synthetic"]:
            continue
        if (first := by_sha.get(line["sha256"])) is not None:
            problems.append(Problem(str(task_files[file]), "", f"{file} is the same image as {first}; "
                                                              "a retrieved image may be in one slot of a run"))
            continue
        near = index.first_within(int(line["phash"], 16)) if run.near_duplicate_bits >= 0 else None
        if near is not None:
            problems.append(Problem(str(task_files[file]), "", f"{file} is a near duplicate of {near[0]} (pHash "
                                                              f"distance {near[1]}); a retrieved image may be in "
                                                              "one slot of a run"))
            continue
        by_sha[line["sha256"]] = file
        index.add(int(line["phash"], 16), file)
    return problems


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
