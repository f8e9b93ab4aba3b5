"""The errors users cause, one line each, shared by every layer; the command line turns them into
`error: ...` and an exit code (vischain/error_lines.py).

    raise UsageError("--tasks: must be at least 1, got 0")        # a flag, a file, a field: exit 2
    raise DataError(f"{path}: scenes: expected a list")           # bad data in a file read
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

EXIT_INVALID = 1
"""The data checked is invalid (validate, publish)."""
EXIT_USAGE = 2
"""Bad input from the user, or a failed call."""


class UsageError(ValueError):
    """Bad input from the user: a flag, a file or a field. The message names which."""


class DataError(ValueError):
    """Bad data or bad input: a missing folder, a field, a flag. The message names which."""


def read_json(path: str | Path, what: str = "file"):
    """The JSON value in `path`; a DataError naming the file when it is missing or not JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: {what} not found") from None
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: not JSON: {err}") from None


def read_yaml(path: str | Path, error: type[ValueError] = UsageError, what: str = "file"):
    """The YAML value in `path`; `error` (one line naming the file) when it is missing, unreadable or
    not YAML. Every YAML file users write (profiles, domains, topic files, recipes) is read here."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise error(f"{path}: cannot read it: {err}") from None
    except yaml.YAMLError as err:
        raise error(f"{path}: not valid YAML: {str(err).splitlines()[0]}") from None
