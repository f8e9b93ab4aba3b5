"""Load the JSON Schemas in this folder and check values against them.

Every file vischain writes or reads has a schema here (`<name>.schema.json`). A problem is reported
as (file, JSON pointer, message), the form `vischain validate` prints:

    problems = schema_problems("itmr", task, file="runs/eng/tasks/itmr/0001/task.json")
    require("plan", plan, file="plan.json")        # raises SchemaViolation on the first problem
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import jsonschema

from agents.licences import DEFAULT_ALLOW, Licence, LicencePolicy  # noqa: F401  (DEFAULT_ALLOW re-exported)

SCHEMA_DIR = Path(__file__).parent
TASK_KINDS = ("itmr", "icir", "iomr")


@dataclass(frozen=True)
class Problem:
    file: str
    pointer: str
    """JSON pointer (RFC 6901) into the file's value; "" is the whole document."""
    message: str

    def __str__(self) -> str:
        return f"{self.file}{'#' + self.pointer if self.pointer else ''}: {self.message}"


class SchemaViolation(ValueError):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{problems[0]}{more}")


@functools.cache
def load_schema(name: str) -> dict:
    path = SCHEMA_DIR / f"{name}.schema.json"
    if not path.is_file():
        known = sorted(p.name.removesuffix(".schema.json") for p in SCHEMA_DIR.glob("*.schema.json"))
        raise KeyError(f"no schema named {name!r}; known: {', '.join(known)}")
    return json.loads(path.read_text())


@functools.cache
def _validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(load_schema(name), format_checker=jsonschema.FormatChecker())


def json_pointer(path) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


def schema_problems(name: str, value, file: str = "<value>") -> list[Problem]:
    errors = sorted(_validator(name).iter_errors(value), key=lambda e: (list(map(str, e.path)), e.message))
    return [Problem(file, json_pointer(e.path), e.message) for e in errors]


def require(name: str, value, file: str = "<value>") -> None:
    problems = schema_problems(name, value, file)
    if problems:
        raise SchemaViolation(problems)


# ---- Task folders: the schema, then what a schema cannot say ------------------------------------

def detect_kind(task: dict) -> str | None:
    """The VisChainBench kind of a task.json by its shape (foreign folders carry no kind field)."""
    if isinstance(task, dict):
        if "questions" in task:
            return "itmr"
        if "question_start_label" in task:
            return "icir"
        if "initial_condition" in task:
            return "iomr"
    return None


def task_problems(folder: Path, provenance: dict[str, dict] | None, run_root: Path | None = None,
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


def task_images(task: dict) -> list[tuple[str, str]]:
    """(JSON pointer, file name) of every image a task references, in reading order."""
    kind = detect_kind(task)
    if kind == "itmr":
        return [(f"/questions/{q}/choices/{c}/image", choice["image"])
                for q, question in enumerate(task["questions"]) for c, choice in enumerate(question["choices"])]
    if kind == "icir":
        return [(f"/steps/{s}/images/{i}/image", image["image"])
                for s, step in enumerate(task["steps"]) for i, image in enumerate(step["images"])]
    pairs = [("/initial_condition", task["initial_condition"])]
    for s, step in enumerate(task["steps"]):
        pairs.append((f"/steps/{s}/condition", step["condition"]))
        pairs += [(f"/steps/{s}/options/{o}/image", option["image"]) for o, option in enumerate(step["options"])]
    return pairs


def _itmr_rules(task: dict, file: str) -> list[Problem]:
    problems = _unique([q["original_id"] for q in task["questions"]], "/questions/{}/original_id", file)
    for q, question in enumerate(task["questions"]):
        correct = sum(choice["correct"] for choice in question["choices"])
        if correct != 1:
            problems.append(Problem(file, f"/questions/{q}/choices", f"exactly one choice must be correct, found {correct}"))
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
            problems.append(Problem(file, f"/steps/{s}/answer_label", f"names no image: {step['answer_label']} not in {ids}"))
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


def _image_problems(folder: Path, name: str, file: str, pointer: str, provenance: dict[str, dict] | None,
                    run_root: Path | None, policy: LicencePolicy, decode: bool) -> list[Problem]:
    from PIL import Image, UnidentifiedImageError

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


def licence_problems(line: dict, policy: LicencePolicy) -> list[str]:
    """Why a provenance line's image may not be in a task (empty when it may)."""
    if line.get("synthetic"):
        return []
    record = line.get("licence")
    if not record:
        return ["licence unknown and image not synthetic"]
    licence = Licence(record["id"], record.get("version"), record.get("url"), bool(record.get("verified")),
                      record.get("filter"))
    refusal = policy.refusal(licence)
    return [refusal] if refusal else []
