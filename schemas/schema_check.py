"""Load the JSON Schemas in this folder and check values against them.

Every file vischain writes or reads has a schema here (`<name>.schema.json`). A problem is reported
as (file, JSON pointer, message), the form `vischain validate` prints:

    problems = schema_problems("itmr", task, file="runs/eng/tasks/itmr/0001/task.json")
    require("plan", plan, file="plan.json")        # raises SchemaViolation on the first problem
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import jsonschema

SCHEMA_DIR = Path(__file__).parent


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
