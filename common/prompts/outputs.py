"""Read an agent's reply in its declared format, or say exactly why it is not (the model is asked again once).

Models wrap JSON in fences or prose however firmly they are told not to, so the outermost JSON object is
taken from wherever it is; everything after that is strict: required keys, types, enums, and for Vega-Lite
a spec that carries no data and no external resource of its own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from common.errors import UpstreamError
from common.prompts import schema as output_schema
from common.prompts.templates import PromptTemplate

# The whole reply inside one fence, e.g. ```json ... ``` or ```markdown ... ```.
_WHOLE_FENCE = re.compile(r"\A\s*```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\r?\n(.*?)\r?\n?[ \t]*```\s*\Z", re.DOTALL)
_MARKDOWN_FENCE_LANGUAGES = {"", "markdown", "md"}
# A reply is bounded by max_tokens; the cap only stops a pathological reply full of stray braces.
_MAX_OBJECT_STARTS = 200
_VEGA_LITE_VIEWS = ("mark", "layer", "concat", "hconcat", "vconcat", "facet", "repeat")
# Keys through which a spec could fetch, link or configure something beyond its view: never allowed
# (common/charts/spec.py checks the spec in depth before rendering; this is the cheap check that earns a retry).
_EXTERNAL_KEYS = {"url", "href", "datasets", "usermeta"}
RESULT_DATA = {"name": "result"}


class OutputFormatError(UpstreamError):
    """A model's reply is not in its prompt's output format; ``reason`` is what the model is told on the retry."""

    code = "LLM_OUTPUT_INVALID"

    def __init__(self, prompt: str, reason: str):
        super().__init__(f"the {prompt} reply is not in its format: {reason}", details={"prompt": prompt,
                                                                                         "reason": reason})
        self.prompt = prompt
        self.reason = reason


def parse_output(template: PromptTemplate, reply_text: str) -> Any:
    """Return the reply as its format's value (dict for json and vega-lite, str for markdown), or raise."""
    output = template.output
    if not isinstance(reply_text, str) or not reply_text.strip():
        raise OutputFormatError(template.name, "the reply is empty")
    if output.format == "markdown":
        return _markdown(reply_text)
    try:
        value = extract_json_object(reply_text)
        if output.format == "vega-lite":
            _check_vega_lite(value)
        elif output.schema is not None:
            output_schema.validate(value, output.schema)
    except ValueError as exc:
        raise OutputFormatError(template.name, str(exc)) from None
    return value


def retry_instruction(template: PromptTemplate, error: OutputFormatError) -> str:
    """Return the user message that asks the model once more, quoting why its reply was refused."""
    if template.output.format == "json" and template.output.schema is not None:
        keys = ", ".join(json.dumps(key) for key in template.output.schema.get("required", ()))
        wanted = f"exactly one JSON object with the keys {keys}, and nothing else"
    elif template.output.format == "vega-lite":
        wanted = 'exactly one Vega-Lite v5 JSON spec whose "data" is {"name": "result"}, and nothing else'
    else:
        wanted = "the Markdown answer only"
    return f"Your previous reply could not be used: {error.reason}. Reply again with {wanted}."


def extract_json_object(text: str) -> dict[str, Any]:
    """Return the outermost JSON object in ``text`` (fenced, or wrapped in prose); raise ``ValueError``."""
    fenced = _WHOLE_FENCE.match(text)
    candidate = fenced.group(2) if fenced else text
    try:
        value = json.loads(candidate)
    except json.JSONDecodeError:
        pass
    else:
        if isinstance(value, dict):
            return value
        raise ValueError(f"the reply must be a JSON object, got a JSON {type(value).__name__}")
    return _first_object(candidate)


def _first_object(text: str) -> dict[str, Any]:
    decoder = json.JSONDecoder()
    start = text.find("{")
    if start == -1:
        raise ValueError("the reply contains no JSON object")
    try:
        return decoder.raw_decode(text, start)[0]
    except json.JSONDecodeError as exc:
        # Reported if nothing decodes: the object the model meant to send starts at the first "{".
        first_error = exc
    # Scanning left to right, the next "{" that decodes is the outermost object after stray prose braces.
    for _ in range(_MAX_OBJECT_STARTS):
        start = text.find("{", start + 1)
        if start == -1:
            break
        try:
            return decoder.raw_decode(text, start)[0]
        except json.JSONDecodeError:
            continue
    raise ValueError(f"the reply is not valid JSON: {first_error.msg} (line {first_error.lineno}, "
                     f"column {first_error.colno})")


def _markdown(text: str) -> str:
    fenced = _WHOLE_FENCE.match(text)
    if fenced and fenced.group(1).lower() in _MARKDOWN_FENCE_LANGUAGES:
        text = fenced.group(2)
    return text.strip()


def _check_vega_lite(spec: dict[str, Any]) -> None:
    declared = spec.get("$schema")
    if declared is not None and (not isinstance(declared, str) or "vega-lite/v5" not in declared):
        raise ValueError(f'"$schema" must be the Vega-Lite v5 schema, got {json.dumps(declared)}')
    if not any(view in spec for view in _VEGA_LITE_VIEWS):
        raise ValueError('the spec has no "mark" or "layer" (it is not a Vega-Lite view)')
    if spec.get("data") != RESULT_DATA:
        raise ValueError(f'the spec\'s "data" must be exactly {{"name": "result"}}, got '
                         f'{json.dumps(spec.get("data"), default=str)[:80]}')
    _check_nested(spec, "spec", top=True)


def _check_nested(value: Any, path: str, *, top: bool = False) -> None:
    if isinstance(value, Mapping):
        for key, child in value.items():
            where = f"{path}.{key}"
            if key in _EXTERNAL_KEYS:
                raise ValueError(f'{where} is not allowed: the spec may not load or link anything itself')
            if key == "data" and not top and child != RESULT_DATA:
                raise ValueError(f'{where} must be {{"name": "result"}} or absent: the server binds the data')
            _check_nested(child, where)
    elif isinstance(value, list):
        for index, child in enumerate(value):
            _check_nested(child, f"{path}[{index}]")
