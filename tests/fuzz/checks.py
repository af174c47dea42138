"""What every fuzzed answer must be: no 5xx but an honest 502/503, and every error in its documented shape."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

# A dependency that cannot be reached (a Postgres server, a model provider: nothing leaves loopback here).
HONEST_SERVER_ERRORS = {502, 503}
_CODE = re.compile(r"^[A-Z][A-Z0-9_]*$")
# The one v1 non-2xx answer that is not an Error: readiness reports which backends failed, in its own shape.
READINESS = "/api/v1/health/ready"

Shape = Callable[[Any], list[str]]


def v1_error(body: Any) -> list[str]:
    """Problems of a v1 error body: ``{"error": {"code", "message", "details"}}`` and nothing else."""
    if not isinstance(body, dict) or set(body) != {"error"} or not isinstance(body["error"], dict):
        return [f"not the v1 error shape: {str(body)[:200]}"]
    error = body["error"]
    problems = []
    if set(error) != {"code", "message", "details"}:
        problems.append(f"error keys are {sorted(error)}")
    if not isinstance(error.get("code"), str) or not _CODE.match(error["code"]):
        problems.append(f"error.code {error.get('code')!r} is not an UPPER_CASE code")
    if not isinstance(error.get("message"), str) or not error["message"]:
        problems.append("error.message is empty")
    if not isinstance(error.get("details"), dict):
        problems.append("error.details is not an object")
    return problems


def legacy_detail(body: Any) -> list[str]:
    """Problems of the original API's error body: ``{"detail": message, "code": code}``."""
    if not isinstance(body, dict) or set(body) != {"detail", "code"}:
        return [f"not the legacy {{detail, code}} shape: {str(body)[:200]}"]
    if not isinstance(body["detail"], str) or not body["detail"] or not _CODE.match(str(body["code"])):
        return [f"legacy error with an empty detail or a bad code: {body}"]
    return []


def flagged(flag: str | None) -> Shape:
    """The original frontend's flag-and-error bodies: ``{flag: false, "error"}`` (``/pg/*``, key routes)."""

    def check(body: Any) -> list[str]:
        expected = {"error"} | ({flag} if flag else set())
        if not isinstance(body, dict) or not expected <= set(body) <= expected | {"request_id"}:
            return [f"not the {sorted(expected)} shape: {str(body)[:200]}"]
        if flag and body[flag] is not False:
            return [f"{flag} is not false on an error: {body}"]
        if not isinstance(body["error"], str) or not body["error"]:
            return [f"empty error: {body}"]
        return []

    return check


def answer_problems(method: str, path: str, status: int, content_type: str, raw: bytes, shape: Shape,
                    *, extra_statuses: frozenset[int] = frozenset()) -> list[str]:
    """Everything wrong with one answer; empty when it is acceptable."""
    where = f"{method} {path} -> {status}"
    if status >= 500 and status not in HONEST_SERVER_ERRORS | extra_statuses:
        return [f"{where}: a server error: {raw[:300]!r}"]
    if status < 400 or (path == READINESS and status == 503):
        return []
    if not content_type.startswith("application/json"):
        return [f"{where}: an error that is not JSON ({content_type}): {raw[:200]!r}"]
    try:
        body = json.loads(raw)
    except ValueError:
        return [f"{where}: an error body that does not parse: {raw[:200]!r}"]
    problems = [f"{where}: {problem}" for problem in shape(body)]
    if status >= 500 and shape is v1_error and not problems:
        if body["error"]["code"] == "INTERNAL" or "request_id" not in body["error"]["details"]:
            problems.append(f"{where}: a 5xx that is not a dependency's failure: {body}")
    return problems
