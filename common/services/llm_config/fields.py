"""Checks on what a caller sends about LLM keys and models, applied before anything is read or written."""

from __future__ import annotations

import re
from typing import Any

from common import errors

# Same rules as a question's own apiBase and apiKey (common/llm/keys.py): an http(s) URL with a host and no
# credentials in it, and no Fernet ciphertext passed off as a key.
from common.llm.keys import FERNET_TOKEN, checked_api_base

MIN_KEY_CHARS, MAX_KEY_CHARS = 8, 512
MAX_API_BASE_CHARS = 2048
MAX_MODEL_CHARS = 256
_KEY_CHARS = re.compile(r"[A-Za-z0-9_\-.=:/+~]+")
# A key whose letters are only these words is a placeholder ("your-api-key", "test-key-1234", "sk-xxxx...").
_PLACEHOLDER = re.compile(r"(?:test(?:ing)?|fake|dummy|demo|sample|example|your|my|api|key|secret|token|placeholder"
                          r"|change|me|here|goes|put|insert|replace|none|null|password|provider|openai|gemini"
                          r"|google|anthropic|sk|x+)+")
EFFORTS = ("low", "medium", "high")
_PARAMS = {"temperature", "max_tokens", "reasoning_effort", "verbosity", "seed"}
MAX_SEED = 2**63 - 1


def text(body: dict[str, Any], field: str, limit: int, *, required: bool) -> str | None:
    """Return a stripped string field of ``body``; None when it is absent and not required."""
    value = body.get(field)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise errors.BadRequest(f"the field '{field}' is required", code="MISSING_FIELD")
        return None
    if not isinstance(value, str):
        raise errors.BadRequest(f"'{field}' must be a string")
    if len(value) > limit:
        raise errors.BadRequest(f"'{field}' may be at most {limit} characters")
    return value.strip()


def plausible_key(api_key: str) -> str:
    """Return ``api_key`` when it could be a provider's key; refuse placeholders, ciphertext and malformed text."""
    if not MIN_KEY_CHARS <= len(api_key) <= MAX_KEY_CHARS or not _KEY_CHARS.fullmatch(api_key):
        raise errors.BadRequest(f"the API key looks invalid: it must be {MIN_KEY_CHARS}-{MAX_KEY_CHARS} characters "
                                "without whitespace or unusual symbols", code="INVALID_API_KEY")
    folded = re.sub(r"[^a-z0-9]", "", api_key.lower())
    letters = re.sub(r"[^a-z]", "", folded)  # digits alone ("12345678") are not a provider's key either
    if len(set(folded)) < 4 or not letters or _PLACEHOLDER.fullmatch(letters):
        raise errors.BadRequest("the API key looks like a placeholder, not a provider's key", code="INVALID_API_KEY")
    if FERNET_TOKEN.fullmatch(api_key):
        raise errors.BadRequest("the API key looks like an encrypted token (gAAAA...), not a provider's key",
                                code="INVALID_API_KEY")
    return api_key


def api_base(value: Any) -> str | None:
    """Return an endpoint URL that may be saved with a key, or None when none was sent."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_API_BASE_CHARS:
        raise errors.BadRequest(f"'api_base' must be a URL of at most {MAX_API_BASE_CHARS} characters")
    return checked_api_base(value, errors.BadRequest, "'api_base'")


def model_params(value: Any) -> dict[str, Any]:
    """Return checked call parameters of an active choice; any key not listed here is refused."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise errors.BadRequest("'params' must be an object")
    unknown = sorted(set(value) - _PARAMS)
    if unknown:
        raise errors.BadRequest(f"unknown params {unknown}: allowed are {sorted(_PARAMS)}", code="INVALID_PARAMS")
    params = {name: item for name, item in value.items() if item is not None}
    _check_number(params, "temperature", float, 0, 2)
    _check_number(params, "max_tokens", int, 1, 32000)
    _check_number(params, "seed", int, -MAX_SEED - 1, MAX_SEED)
    for name in ("reasoning_effort", "verbosity"):
        if name in params and params[name] not in EFFORTS:
            raise errors.BadRequest(f"'{name}' must be one of {', '.join(EFFORTS)}", code="INVALID_PARAMS")
    return params


def _check_number(params: dict[str, Any], name: str, kind: type, low: float, high: float) -> None:
    if name not in params:
        return
    value = params[name]
    allowed = (int, float) if kind is float else (int,)
    # JSON true/false are ints in Python; they are not numbers here.
    if isinstance(value, bool) or not isinstance(value, allowed) or not low <= value <= high:
        raise errors.BadRequest(f"'{name}' must be {'a number' if kind is float else 'an integer'} "
                                f"from {low} to {high}", code="INVALID_PARAMS")
