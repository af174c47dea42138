"""What a request must be before a handler sees it: a bounded body, JSON of bounded depth, and valid text.

Checked once, at the edge (``common.http``): every JSON body is parsed here, never by a handler. A body is
read only by the route that takes one, only up to its limit, and one left unread (a refused request: 404,
405, 413, any error before the handler read it, or a GET that came with a body) is never read afterwards:
functions-framework reads the rest of every body after a non-streamed answer (``read_request``, with
``request.get_data()``, into memory), so the router makes that read empty and closes the connection instead.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Iterable
from typing import Any

from werkzeug.exceptions import RequestEntityTooLarge

from common import errors

# Deeper nesting is refused before parsing: Python's json recurses once per level (RecursionError near
# 1,000 levels), and so does everything that walks a body afterwards (validation, storage, serialisation).
MAX_JSON_DEPTH = 64
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_READ_CHUNK_BYTES = 64 * 1024

# NUL and UTF-16 surrogates (only a JSON "\ud800" escape can make one) cannot be stored in Postgres text or
# identifiers, nor encoded as UTF-8; no field of this API means either.
_INVALID_TEXT = re.compile("[\x00\ud800-\udfff]")
# Control characters (C0 and DEL): no name or id in a path may hold one, as functions-framework's own
# catch-all rule already refuses a path with a newline.
_NOT_IN_PATH = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_A_BRACKET = re.compile(r"[^\[\]{}]+")
_DEPTH_CHANGE = {"[": 1, "{": 1, "]": -1, "}": -1}


def has_body(request: Any) -> bool:
    """Whether the request comes with a body (a Content-Length above 0, or a chunked one)."""
    if request.content_length:
        return True
    return "chunked" in request.headers.get("Transfer-Encoding", "").lower()


def read_body(request: Any, limit: int, *, what: str = "a JSON body") -> bytes:
    """Read the whole body, at most ``limit`` bytes: 413 before reading when Content-Length says more."""
    too_large = errors.PayloadTooLarge(f"{what} may be at most {limit} bytes", details={"limit_bytes": limit})
    if (request.content_length or 0) > limit:
        raise too_large
    stream = bounded_stream(request, limit + 1)
    parts, size = [], 0
    try:
        while chunk := stream.read(_READ_CHUNK_BYTES):
            size += len(chunk)
            if size > limit:
                raise too_large
            parts.append(chunk)
    except RequestEntityTooLarge:  # werkzeug's own bound on a chunked body, one byte past ours
        raise too_large from None
    mark_read(request)
    return b"".join(parts)


def bounded_stream(request: Any, limit: int) -> Any:
    """The request's body stream, which raises 413 past ``limit`` bytes even without a Content-Length."""
    if "stream" not in request.__dict__:  # werkzeug caches the stream, built with the limit of its first use
        request.max_content_length = limit
    return request.stream


def mark_read(request: Any) -> None:
    """Record that the body was read to its end, so the connection may stay open."""
    request.environ["convoinsight.body_read"] = True


def mark_read_if_ended(request: Any, stream: Any) -> None:
    """Mark the body read when ``stream`` has nothing left (a parser may stop at its own end marker)."""
    try:
        if not stream.read(1):
            mark_read(request)
    except RequestEntityTooLarge:
        pass


def left_unread(request: Any) -> bool:
    """Whether some of the body may still be on the wire (never read, or read only in part)."""
    if not has_body(request) or request.environ.get("convoinsight.body_read"):
        return False
    stream = request.__dict__.get("stream")
    # A stream bounded by the Content-Length itself knows whether it was read to its end.
    limit = getattr(stream, "limit", None)
    return not (limit is not None and limit == request.content_length and stream.is_exhausted)


def never_read_rest(request: Any) -> None:
    """Make later reads of the body (functions-framework's ``request.get_data()`` after the answer) empty."""
    request._cached_data = b""  # werkzeug's cache of get_data(): when set, it is returned instead of reading


def parse_json(raw: bytes) -> Any:
    """Parse a JSON document: UTF-8, at most ``MAX_JSON_DEPTH`` deep, finite 64-bit numbers, valid text."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise errors.BadRequest(f"the body is not valid JSON: it is not UTF-8 ({exc.reason} at byte "
                                f"{exc.start})") from None
    if _deeper_than(text, MAX_JSON_DEPTH):
        raise errors.BadRequest(f"the JSON body is nested more than {MAX_JSON_DEPTH} levels deep")
    try:
        document = json.loads(text, parse_constant=_refuse_constant)
    except ValueError as exc:
        raise errors.BadRequest(f"the body is not valid JSON: {exc}") from None
    check_json_values(document)
    return document


def check_json_values(document: Any) -> None:
    """Refuse a string (key or value) that is not valid text, and a number outside 64 bits or not finite."""
    # A path is a (parent, key) pair, spelled out only for the message of a refusal.
    _check_scalar(document, None)
    pending: list[tuple[Any, Any]] = [(document, None)] if isinstance(document, dict | list) else []
    while pending:
        container, path = pending.pop()
        pairs = container.items() if type(container) is dict else enumerate(container)
        for key, value in pairs:
            if type(key) is str and _INVALID_TEXT.search(key):
                check_text(key, f"a key in {_spell(path)}", at=_spell(path))
            kind = type(value)
            if kind is dict or kind is list:
                pending.append((value, (path, key)))
            elif kind is str:
                if _INVALID_TEXT.search(value):
                    _check_scalar(value, (path, key))
            elif kind is int or kind is float:
                _check_scalar(value, (path, key))


def _check_scalar(value: Any, path: Any) -> None:
    if isinstance(value, str):
        check_text(value, f"the string at {_spell(path)}", at=_spell(path))
    elif type(value) is int and not INT64_MIN <= value <= INT64_MAX:
        raise errors.BadRequest(f"the number at {_spell(path)} is outside the 64-bit integer range",
                                details={"at": _spell(path)})
    elif type(value) is float and not math.isfinite(value):
        raise errors.BadRequest(f"the number at {_spell(path)} is too large", details={"at": _spell(path)})


def _spell(path: Any) -> str:
    keys = []
    while path is not None:
        path, key = path
        keys.append(f"[{key}]" if isinstance(key, int) else f".{key}")
    return "$" + "".join(reversed(keys))


def check_text(value: str, what: str, *, at: str | None = None) -> None:
    """Refuse text holding NUL or a lone UTF-16 surrogate: 400 that names ``what`` (and the JSON path ``at``)."""
    if _INVALID_TEXT.search(value):
        raise errors.BadRequest(f"{what} is not valid text (it holds NUL or an unpaired UTF-16 surrogate)",
                                details={"at": at} if at else {})


def path_value_allowed(value: str) -> bool:
    """Whether a path parameter could name anything: no control character, no surrogate."""
    return not _NOT_IN_PATH.search(value)


def check_fields(pairs: Iterable[tuple[str, Any]], where: str) -> None:
    """Refuse a query argument or form field (``where``) whose name or value is not valid text."""
    for key, value in pairs:
        check_text(key, f"the name of a {where}")
        if isinstance(value, str):
            check_text(value, f"the {where} {key!r}")


def refuse_unknown_fields(fields: Iterable[str], accepted: Iterable[str], where: str = "the JSON body") -> None:
    """400 naming the fields ``where`` has that the route does not read, and the ones it does.

    A field a route ignores is a mistake on the caller's side (``apiBase`` for ``api_base`` once sent a user's
    key to the server's own endpoint): saying so beats answering as though it had not been sent.
    """
    accepted = sorted(accepted)
    unknown = sorted(set(fields) - set(accepted))
    if unknown:
        raise errors.BadRequest(f"{where} has unknown field(s): {', '.join(unknown)}; accepted: "
                                f"{', '.join(accepted)}", code="UNKNOWN_FIELD",
                                details={"unknown": unknown, "accepted": accepted})


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _deeper_than(text: str, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` deep in ``text`` (brackets in strings do not count)."""
    brackets = _NOT_A_BRACKET.sub("", _JSON_STRING.sub("", text))
    if brackets.count("[") + brackets.count("{") <= limit:
        return False  # too few openings to get there: spare the walk below
    return max(itertools.accumulate(map(_DEPTH_CHANGE.__getitem__, brackets))) > limit
