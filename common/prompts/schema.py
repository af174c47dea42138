"""A small JSON-schema subset for agents' JSON replies: check a schema at load, validate a reply against it.

Only what the prompts need (type, required, properties, enum, items, minItems/maxItems, minLength/maxLength,
description), so that a failure message is short and exact enough to send back to the model verbatim.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (Mapping,),
    "array": (list, tuple),
    "string": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "number": (int, float),
}
_KEYWORDS = {"type", "required", "properties", "enum", "items", "minItems", "maxItems", "minLength", "maxLength",
             "description"}
_COUNTS = ("minItems", "maxItems", "minLength", "maxLength")


def check_schema(schema: object, path: str) -> None:
    """Raise ``ValueError`` naming ``path`` when ``schema`` uses a keyword or type this subset does not know."""
    if not isinstance(schema, Mapping):
        raise ValueError(f"{path} must be a mapping")
    unknown = sorted(set(schema) - _KEYWORDS)
    if unknown:
        raise ValueError(f"{path} uses unknown keyword(s) {', '.join(map(str, unknown))}")
    if schema.get("type") not in _TYPES:
        raise ValueError(f"{path}.type must be one of {', '.join(_TYPES)}, got {schema.get('type')!r}")
    for count in _COUNTS:
        if count in schema and (not isinstance(schema[count], int) or schema[count] < 0):
            raise ValueError(f"{path}.{count} must be a non-negative integer")
    if "enum" in schema and (not isinstance(schema["enum"], Sequence) or isinstance(schema["enum"], str)
                             or not schema["enum"]):
        raise ValueError(f"{path}.enum must be a non-empty list")
    properties = schema.get("properties", {})
    if not isinstance(properties, Mapping):
        raise ValueError(f"{path}.properties must be a mapping")
    for name, child in properties.items():
        check_schema(child, f"{path}.properties.{name}")
    required = schema.get("required", [])
    if not isinstance(required, Sequence) or isinstance(required, str):
        raise ValueError(f"{path}.required must be a list")
    undeclared = [name for name in required if name not in properties]
    if undeclared:
        raise ValueError(f"{path}.required names {', '.join(map(str, undeclared))} without a property")
    if "items" in schema:
        check_schema(schema["items"], f"{path}.items")


def validate(value: Any, schema: Mapping[str, Any], path: str = "reply") -> None:
    """Raise ``ValueError`` with the first mismatch between ``value`` and ``schema``, naming where it is."""
    expected = schema["type"]
    # bool is an int in Python but never an integer or a number in JSON.
    if not isinstance(value, _TYPES[expected]) or (expected in ("integer", "number") and isinstance(value, bool)):
        raise ValueError(f"{path} must be {_article(expected)}, got {_describe(value)}")
    if "enum" in schema and value not in schema["enum"]:
        choices = ", ".join(json.dumps(choice) for choice in schema["enum"])
        raise ValueError(f"{path} must be one of {choices}, got {_describe(value)}")
    if expected == "string":
        _check_size(len(value), schema, "minLength", "maxLength", f"{path} must have", "characters")
    if expected == "array":
        _check_size(len(value), schema, "minItems", "maxItems", f"{path} must have", "items")
        for index, item in enumerate(value):
            if "items" in schema:
                validate(item, schema["items"], f"{path}[{index}]")
    if expected == "object":
        missing = [name for name in schema.get("required", ()) if name not in value]
        if missing:
            raise ValueError(f"{path} is missing required key(s) {', '.join(map(json.dumps, missing))}")
        for name, child in schema.get("properties", {}).items():
            if name in value:
                validate(value[name], child, f"{path}.{name}")


def _check_size(size: int, schema: Mapping[str, Any], low: str, high: str, prefix: str, unit: str) -> None:
    if low in schema and size < schema[low]:
        raise ValueError(f"{prefix} at least {schema[low]} {unit if schema[low] != 1 else unit[:-1]}, got {size}")
    if high in schema and size > schema[high]:
        raise ValueError(f"{prefix} at most {schema[high]} {unit if schema[high] != 1 else unit[:-1]}, got {size}")


def _article(type_name: str) -> str:
    return f"an {type_name}" if type_name[0] in "aeiou" else f"a {type_name}"


def _describe(value: Any) -> str:
    kind = {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null"}.get(type(value))
    if kind is None:
        kind = "object" if isinstance(value, Mapping) else "array" if isinstance(value, list) else type(value).__name__
    shown = json.dumps(value, default=str)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{kind} {shown}" if kind in ("string", "integer", "number", "boolean") else kind
