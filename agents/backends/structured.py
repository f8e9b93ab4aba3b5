"""JSON Schema checks shared by every backend that offers structured output."""

from __future__ import annotations

import functools
import json

import jsonschema

from agents.backends.chat import InvalidSchema


def check_schema(schema: dict | None) -> None:
    """Refuse a schema that is not valid draft 2020-12 JSON Schema, before any model call."""
    if schema is None:
        return
    if not isinstance(schema, dict):
        raise InvalidSchema(f"schema: expected a JSON object, got {type(schema).__name__}")
    _validator(json.dumps(schema, sort_keys=True))


@functools.lru_cache(maxsize=256)
def _validator(schema_text: str) -> jsonschema.Draft202012Validator:
    """One checked, compiled validator per distinct schema: agents send the same few schemas for
    every call, and checking a schema against the metaschema is costly."""
    schema = json.loads(schema_text)
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as err:
        where = "/".join(str(p) for p in err.path) or "(root)"
        raise InvalidSchema(f"schema is not valid JSON Schema at {where}: {err.message}") from None
    return jsonschema.Draft202012Validator(schema)


class NotJSON(ValueError):
    """The reply is not JSON at all (as opposed to JSON that breaks the schema)."""


def parse_json_reply(text: str, schema: dict) -> dict:
    """Parse a model reply and validate it; the ValueError message is fit to feed back to a model."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise NotJSON(f"reply is not JSON: {err.msg} at char {err.pos}") from None
    errors = sorted(_validator(json.dumps(schema, sort_keys=True)).iter_errors(value), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = "/" + "/".join(str(p) for p in first.path)
        raise ValueError(f"reply does not match the schema at {where}: {first.message}")
    return value
