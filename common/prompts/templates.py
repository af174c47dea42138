"""One prompt template, built from a mapping (a YAML file now, an admin override later) and checked on the way in.

Every check that can fail at start-up does: an undeclared or unused ``${placeholder}``, a stray ``$``, an
unknown output format or a malformed output schema, a pipeline agent whose system prompt does not open with
its "You are the <Role>" line. The error names the file and what is wrong, so a bad prompt never reaches a
request.
"""

from __future__ import annotations

import dataclasses
import string
import types
from collections.abc import Mapping
from typing import Any

from common.errors import ConfigurationError
from common.prompts import schema as output_schema

# The pipeline's agents and the role their system prompt must open with (the agent protocol). The planner
# does what the router, the orchestrator and the first manipulator call did; the analyst what the analyzer and
# the compiler did: two rounds instead of five.
AGENT_ROLES = {
    "planner": "Planner",
    "manipulator": "Data Manipulator",
    "visualizer": "Data Visualizer",
    "analyst": "Analyst",
}
OUTPUT_FORMATS = ("json", "markdown", "vega-lite")
# Model parameters a prompt may set; unknown keys are typos that LiteLLM would otherwise drop silently.
# Timeouts, retries and keys are not here: the LLM client owns them and refuses them in params.
MODEL_PARAMETERS: dict[str, tuple[type, ...]] = {
    "temperature": (int, float),
    "top_p": (int, float),
    "max_tokens": (int,),
    "seed": (int,),
    "reasoning_effort": (str,),
}
REASONING_EFFORTS = ("minimal", "low", "medium", "high")
TEMPLATE_FIELDS = ("name", "version", "description", "system", "user_template", "inputs", "output", "model",
           "fallback_models")


class PromptError(ConfigurationError):
    """A prompt template is broken (or a caller rendered it without its inputs); the message names the file."""

    code = "PROMPT_INVALID"

    def __init__(self, source: str, message: str):
        super().__init__(f"{source}: {message}", details={"source": source})
        self.source = source


@dataclasses.dataclass(frozen=True)
class OutputSpec:
    """What a reply must look like: ``format`` (json, markdown, vega-lite) and, for json, its ``schema``."""

    format: str
    schema: Mapping[str, Any] | None = None


@dataclasses.dataclass(frozen=True)
class PromptTemplate:
    """A checked prompt. Mappings are read-only: the loader caches one instance per process."""

    name: str
    version: int
    system: str
    user_template: str
    inputs: Mapping[str, str]
    output: OutputSpec
    model: Mapping[str, Any]
    fallback_models: tuple[str, ...]
    source_path: str
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return the template as plain JSON-ready data (the shape of its YAML file)."""
        output: dict[str, Any] = {"format": self.output.format}
        if self.output.schema is not None:
            output["schema"] = _thaw(self.output.schema)
        return {"name": self.name, "version": self.version, "description": self.description,
                "system": self.system, "user_template": self.user_template, "inputs": dict(self.inputs),
                "output": output, "model": dict(self.model), "fallback_models": list(self.fallback_models)}


def template_from_mapping(raw: object, source: str, *, expected_name: str | None = None) -> PromptTemplate:
    """Check ``raw`` (a parsed YAML document or a stored override) and return it as a template."""
    if not isinstance(raw, Mapping):
        raise PromptError(source, "a prompt file must be a mapping of fields")
    unknown = sorted(set(raw) - set(TEMPLATE_FIELDS))
    if unknown:
        raise PromptError(source, f"unknown field(s) {', '.join(map(str, unknown))}; "
                                  f"allowed: {', '.join(TEMPLATE_FIELDS)}")
    missing = [field for field in TEMPLATE_FIELDS if field not in raw]
    if missing:
        raise PromptError(source, f"missing field(s) {', '.join(missing)}")
    name = _text(raw, "name", source)
    if expected_name is not None and name != expected_name:
        raise PromptError(source, f"name {name!r} does not match the file name {expected_name!r}")
    version = raw["version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise PromptError(source, f"version must be a positive integer, got {version!r}")
    system = _text(raw, "system", source)
    user_template = _text(raw, "user_template", source)
    _check_role(name, system, source)
    inputs = _inputs(raw["inputs"], source)
    _check_placeholders(system, user_template, inputs, source)
    return PromptTemplate(
        name=name, version=version, system=system, user_template=user_template,
        inputs=types.MappingProxyType(inputs), output=_output(raw["output"], source),
        model=types.MappingProxyType(_model(raw["model"], source)),
        fallback_models=_fallback_models(raw["fallback_models"], source), source_path=source,
        description=_text(raw, "description", source))


def placeholders(text: str, field: str, source: str) -> set[str]:
    """Return the ``${name}``/``$name`` placeholders of ``text``; a ``$`` that starts none is an error."""
    template = string.Template(text)
    for match in template.pattern.finditer(text):
        if match.group("invalid") is not None:
            line = text.count("\n", 0, match.start("invalid")) + 1
            raise PromptError(source, f"{field} line {line}: '$' starts no placeholder (write '$$' for a literal '$')")
    return set(template.get_identifiers())


def _check_placeholders(system: str, user_template: str, inputs: Mapping[str, str], source: str) -> None:
    used = placeholders(system, "system", source) | placeholders(user_template, "user_template", source)
    undeclared = sorted(used - set(inputs))
    if undeclared:
        listed = ", ".join(f"${{{name}}}" for name in undeclared)
        raise PromptError(source, f"placeholder {listed} is not declared in inputs")
    unused = sorted(set(inputs) - used)
    if unused:
        raise PromptError(source, f"input {', '.join(unused)} is declared but used in neither system nor "
                                  "user_template")


def _check_role(name: str, system: str, source: str) -> None:
    role = AGENT_ROLES.get(name)
    if role and not system.lstrip().startswith(f"You are the {role}"):
        raise PromptError(source, f"the system prompt of {name!r} must begin with 'You are the {role}'")


def _text(raw: Mapping[str, Any], field: str, source: str) -> str:
    value = raw[field]
    if not isinstance(value, str) or not value.strip():
        raise PromptError(source, f"{field} must be a non-empty string")
    return value


def _inputs(raw: object, source: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise PromptError(source, "inputs must map each placeholder name to a one-line meaning")
    inputs: dict[str, str] = {}
    for name, meaning in raw.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise PromptError(source, f"input name {name!r} is not a valid placeholder name")
        if not isinstance(meaning, str) or not meaning.strip() or "\n" in meaning.strip():
            raise PromptError(source, f"input {name} needs a one-line meaning")
        inputs[name] = meaning.strip()
    return inputs


def _output(raw: object, source: str) -> OutputSpec:
    if not isinstance(raw, Mapping) or raw.get("format") not in OUTPUT_FORMATS:
        found = raw.get("format") if isinstance(raw, Mapping) else raw
        raise PromptError(source, f"output.format must be one of {', '.join(OUTPUT_FORMATS)}, got {found!r}")
    unknown = sorted(set(raw) - {"format", "schema"})
    if unknown:
        raise PromptError(source, f"unknown output field(s) {', '.join(map(str, unknown))}")
    schema = raw.get("schema")
    if raw["format"] == "json" and schema is None:
        raise PromptError(source, "output.schema is required when output.format is json")
    if schema is None:
        return OutputSpec(format=raw["format"])
    try:
        output_schema.check_schema(schema, "output.schema")
    except ValueError as exc:
        raise PromptError(source, str(exc)) from None
    if raw["format"] == "json" and schema.get("type") != "object":
        raise PromptError(source, "output.schema of a json output must have type object")
    return OutputSpec(format=raw["format"], schema=_freeze(schema))


def _model(raw: object, source: str) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise PromptError(source, "model must be a mapping of model parameters")
    for key, value in raw.items():
        allowed = MODEL_PARAMETERS.get(key)
        if allowed is None:
            raise PromptError(source, f"unknown model parameter {key!r}; allowed: {', '.join(MODEL_PARAMETERS)}")
        if isinstance(value, bool) or not isinstance(value, allowed):
            raise PromptError(source, f"model.{key} has the wrong type: {value!r}")
        if key == "reasoning_effort" and value not in REASONING_EFFORTS:
            raise PromptError(source, f"model.reasoning_effort must be one of {', '.join(REASONING_EFFORTS)}")
    return dict(raw)


def _fallback_models(raw: object, source: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(model, str) and model.strip() for model in raw):
        raise PromptError(source, "fallback_models must be a list of model ids")
    return tuple(raw)


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return types.MappingProxyType({key: _freeze(item) for key, item in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_freeze(item) for item in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _thaw(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [_thaw(item) for item in value]
    return value
