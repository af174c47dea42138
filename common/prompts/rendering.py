"""Fill a template with a caller's values: one substitution pass, so a value is never read as template syntax."""

from __future__ import annotations

import dataclasses
import json
import string
import types
from collections.abc import Mapping
from typing import Any

from common.prompts.templates import PromptError, PromptTemplate


@dataclasses.dataclass(frozen=True)
class RenderedPrompt:
    """The messages and call parameters of one LLM call; ``name``/``version`` key caches and logs."""

    system: str
    user: str
    model_params: Mapping[str, Any]
    fallback_models: tuple[str, ...]
    version: int
    name: str = ""

    def messages(self) -> list[dict[str, str]]:
        """Return the chat messages (system, then user) in the shape LiteLLM takes."""
        return [{"role": "system", "content": self.system}, {"role": "user", "content": self.user}]


def render(template: PromptTemplate, values: Mapping[str, Any], *,
           model_overrides: Mapping[str, Any] | None = None) -> RenderedPrompt:
    """Render ``template`` with ``values`` (every declared input); ``model_overrides`` win over its model block.

    Values the template does not declare are ignored, so a caller can pass one set of values to any version
    of a prompt (an admin override may drop an input). A value is inserted as text: strings as they are,
    mappings and lists as compact JSON, anything else through ``str``.
    """
    missing = sorted(name for name in template.inputs if name not in values)
    if missing:
        raise PromptError(template.source_path,
                          f"prompt {template.name!r} was rendered without input(s) {', '.join(missing)}")
    text_values = {name: _as_text(values[name]) for name in template.inputs}
    # substitute() makes one pass over the template only: "$name" or "${x}" inside a value stays literal.
    system = string.Template(template.system).substitute(text_values)
    user = string.Template(template.user_template).substitute(text_values)
    params = {**template.model, **(model_overrides or {})}
    return RenderedPrompt(system=system, user=user, model_params=types.MappingProxyType(params),
                          fallback_models=template.fallback_models, version=template.version, name=template.name)


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping | list | tuple):
        plain = dict(value) if isinstance(value, Mapping) else list(value)
        return json.dumps(plain, ensure_ascii=False, default=str, separators=(",", ":"))
    if value is None:
        return "(none)"
    return str(value)
