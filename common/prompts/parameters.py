"""The configurable answer parameters: a flat set of known keys, each with a type, limits and a meaning.

Prompt parameters (currency, units, language, ...) reach the prompts as the merged "answer settings"; model
parameters (temperature, reasoning effort) are passed to the LLM call instead. An unknown key or a wrong
type is a 400 that names it, before anything is stored.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from common.errors import BadRequest


@dataclasses.dataclass(frozen=True)
class ParameterSpec:
    """One parameter: ``kind`` is text, choice, integer or number; ``model`` ones go to the LLM call."""

    kind: str
    meaning: str
    choices: tuple[str, ...] = ()
    pattern: str = ""
    max_length: int = 200
    minimum: float | None = None
    maximum: float | None = None
    model: bool = False


_COLOR_SCHEMES = ("blues", "greens", "oranges", "purples", "reds", "greys", "teals", "tableau10", "category10")

PARAMETERS: dict[str, ParameterSpec] = {
    "language": ParameterSpec("text", "language of every answer (BCP 47 tag, e.g. en, id)",
                              pattern=r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*", max_length=35),
    "tone": ParameterSpec("choice", "tone of the answer", choices=("neutral", "formal", "friendly", "executive")),
    "currency": ParameterSpec("text", "currency of money amounts (ISO 4217 code)", pattern=r"[A-Z]{3}",
                              max_length=3),
    "currency_format": ParameterSpec("text", "how to write money amounts, by example (e.g. Rp93,000.00)",
                                     max_length=40),
    "units": ParameterSpec("text", "how to scale and label amounts (e.g. revenue in billions, targets in "
                                   "millions)", max_length=300),
    "number_format": ParameterSpec("text", "thousands and decimal separators, by example (e.g. 1,234.56)",
                                   max_length=40),
    "date_format": ParameterSpec("text", "how to write dates (e.g. 2025-03-31, 31 Mar 2025)", max_length=40),
    "timezone": ParameterSpec("text", "time zone for dates and periods (IANA name, e.g. Asia/Jakarta)",
                              pattern=r"[A-Za-z_]+(/[A-Za-z0-9_+-]+)*", max_length=64),
    "week_start": ParameterSpec("choice", "first day of a week for weekly periods", choices=("monday", "sunday")),
    "fiscal_year_start_month": ParameterSpec("integer", "month (1-12) in which the fiscal year starts",
                                             minimum=1, maximum=12),
    "chart_color_scheme": ParameterSpec("choice", "colour scheme of charts", choices=_COLOR_SCHEMES),
    "max_answer_words": ParameterSpec("integer", "longest final answer, in words", minimum=60, maximum=400),
    "temperature": ParameterSpec("number", "sampling temperature of every LLM call", minimum=0, maximum=2,
                                 model=True),
    "reasoning_effort": ParameterSpec("choice", "reasoning effort of models that support it",
                                      choices=("low", "medium", "high"), model=True),
}


def validate_parameters(raw: object, what: str) -> dict[str, Any]:
    """Return ``raw`` as a checked flat dict of known parameters; raise ``BadRequest`` naming what is wrong."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise BadRequest(f"{what}.parameters must be an object of parameter values")
    unknown = sorted(str(key) for key in raw if key not in PARAMETERS)
    if unknown:
        raise BadRequest(f"{what}.parameters has unknown key(s) {', '.join(unknown)}",
                         code="UNKNOWN_PARAMETER", details={"unknown": unknown, "allowed": sorted(PARAMETERS)})
    return {key: check_value(key, value, what) for key, value in raw.items()}


def check_value(key: str, value: Any, what: str) -> Any:
    """Return ``value`` if it is valid for parameter ``key``; raise ``BadRequest`` otherwise."""
    spec = PARAMETERS[key]
    where = f"{what}.parameters.{key}"
    if spec.kind in ("text", "choice"):
        if not isinstance(value, str) or not value.strip():
            raise BadRequest(f"{where} must be a non-empty string")
        value = value.strip()
        if spec.choices and value not in spec.choices:
            raise BadRequest(f"{where} must be one of {', '.join(spec.choices)}, got {value!r}")
        if any(ord(ch) < 32 for ch in value):
            raise BadRequest(f"{where} must be one line without control characters")
        if spec.pattern and not re.fullmatch(spec.pattern, value):
            raise BadRequest(f"{where} is not valid: {spec.meaning}")
        if len(value) > spec.max_length:
            raise BadRequest(f"{where} is longer than {spec.max_length} characters")
        return value
    numeric = (int,) if spec.kind == "integer" else (int, float)
    # JSON true/false arrive as bool, which Python counts as an int.
    if isinstance(value, bool) or not isinstance(value, numeric):
        raise BadRequest(f"{where} must be {'an integer' if spec.kind == 'integer' else 'a number'}")
    if (spec.minimum is not None and value < spec.minimum) or (spec.maximum is not None and value > spec.maximum):
        raise BadRequest(f"{where} must be between {spec.minimum:g} and {spec.maximum:g}, got {value}")
    return value
