"""The v1 API's OpenAPI 3 document (``common/openapi.yaml``), and how a router's rule maps to one of its paths.

The document is written by hand and checked against the routes: tests/unit/test_openapi.py fails when a v1
route has no entry in it, or an entry has no route. It is read on first use (the health function serves it,
and a cold start should not pay for parsing it).
"""

from __future__ import annotations

import functools
import os
import re
from typing import Any

OPENAPI_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "openapi.yaml")

# A werkzeug rule variable, with or without a converter: <name>, <path:name>, <int:name>, <any(a, b):name>.
_RULE_VARIABLE = re.compile(r"<(?:[a-zA-Z_][a-zA-Z0-9_]*(?:\([^)]*\))?:)?([a-zA-Z_][a-zA-Z0-9_]*)>")


@functools.cache
def load_openapi() -> dict[str, Any]:
    """Return the parsed OpenAPI document, read once per process; callers must not change it."""
    import yaml

    with open(OPENAPI_FILE, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def rule_to_path(rule: str) -> str:
    """Turn a werkzeug rule (``/api/v1/datasets/<domain>/<path:name>``) into an OpenAPI path template."""
    return _RULE_VARIABLE.sub(r"{\1}", rule)
