"""Configuration layers and their precedence: the request > user > domain > system defaults, applied in code.

Domain and user configuration are data in the metadata store (collection ``prompt_config``, keys ``user``
and ``domain/<domain>``, per tenant); nothing domain-specific is hard-coded. Every parameter is merged key
by key and remembers the layer it came from. Instruction texts cannot be merged, so they are passed to the
prompts in precedence order, each labelled, with every later block saying it overrides the ones before.
"""

from __future__ import annotations

import dataclasses
import logging
import types
from collections.abc import Mapping
from typing import Any

from common.auth import Tenant
from common.errors import BadRequest, NotFound
from common.metadata import MetadataStore
from common.prompts.parameters import PARAMETERS, check_value, validate_parameters

log = logging.getLogger("convoinsight.prompts")

COLLECTION = "prompt_config"
USER_KEY = "user"
MAX_INSTRUCTIONS_LENGTH = 4000
CONFIG_FIELDS = ("instructions", "parameters")
LAYERS = ("system", "domain", "user", "request")  # lowest precedence first
_LABELS = {
    "system": "System default instructions",
    "domain": "Domain instructions (configured for this domain)",
    "user": "User instructions (configured by this user)",
    "request": "Instructions sent with this question",
}
NO_INSTRUCTIONS = "(none)"


@dataclasses.dataclass(frozen=True)
class PromptConfig:
    """One layer: free-text ``instructions`` and flat ``parameters`` (see ``parameters.PARAMETERS``)."""

    instructions: str = ""
    parameters: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the layer as JSON-ready data (the stored and the API shape)."""
        return {"instructions": self.instructions, "parameters": dict(self.parameters)}


# The defaults every domain starts from: generic, never one customer's data (the original's telco block).
SYSTEM_DEFAULTS = PromptConfig(parameters={"language": "en", "tone": "neutral", "week_start": "monday",
                                           "chart_color_scheme": "blues", "max_answer_words": 180})


@dataclasses.dataclass(frozen=True)
class EffectiveConfig:
    """The merged configuration: each parameter's value and source layer, and the instruction texts in order."""

    parameters: Mapping[str, Any]
    sources: Mapping[str, str]
    instructions: tuple[tuple[str, str], ...]  # (layer, text), lowest precedence first, empty texts left out

    def model_overrides(self) -> dict[str, Any]:
        """Return the model parameters set above the system layer (each prompt's own model block is its default)."""
        return {key: value for key, value in self.parameters.items()
                if PARAMETERS[key].model and self.sources[key] != "system"}

    def answer_settings(self) -> str:
        """Return the merged prompt parameters as lines for the ``${answer_settings}`` input."""
        lines = [f"- {key}: {self.parameters[key]} ({PARAMETERS[key].meaning})"
                 for key in PARAMETERS if key in self.parameters and not PARAMETERS[key].model]
        return "\n".join(lines) or "(none)"

    def custom_instructions(self) -> str:
        """Return the instruction texts for ``${custom_instructions}``, the overriding layer last and saying so."""
        blocks = []
        for position, (layer, text) in enumerate(self.instructions):
            label = _LABELS[layer]
            if position:
                label += "; where they conflict with the instructions above, these take precedence"
            blocks.append(f"[{label}]\n{text}")
        return "\n\n".join(blocks) or NO_INSTRUCTIONS

    def prompt_values(self) -> dict[str, str]:
        """Return the configuration inputs that prompts declare (``answer_settings``, ``custom_instructions``)."""
        return {"answer_settings": self.answer_settings(), "custom_instructions": self.custom_instructions()}

    def describe(self) -> dict[str, Any]:
        """Return every value with the layer it came from (what the prompts API shows)."""
        return {"parameters": {key: {"value": value, "source": self.sources[key]}
                               for key, value in self.parameters.items()},
                "instructions": [{"source": layer, "text": text} for layer, text in self.instructions]}


def resolve_configuration(system_defaults: PromptConfig | None, domain_config: PromptConfig | None,
                          user_config: PromptConfig | None, request_overrides: PromptConfig | None) -> EffectiveConfig:
    """Merge the four layers key by key: the request > user > domain > system defaults."""
    parameters: dict[str, Any] = {}
    sources: dict[str, str] = {}
    instructions: list[tuple[str, str]] = []
    layers = zip(LAYERS, (system_defaults, domain_config, user_config, request_overrides), strict=True)
    for layer, config in layers:  # lowest first, so a higher layer overwrites
        if config is None:
            continue
        for key, value in config.parameters.items():
            parameters[key] = value
            sources[key] = layer
        if config.instructions.strip():
            instructions.append((layer, config.instructions.strip()))
    ordered = {key: parameters[key] for key in PARAMETERS if key in parameters}
    return EffectiveConfig(parameters=types.MappingProxyType(ordered),
                           sources=types.MappingProxyType({key: sources[key] for key in ordered}),
                           instructions=tuple(instructions))


def parse_config(raw: object, what: str = "configuration") -> PromptConfig:
    """Check a request body ``{"instructions", "parameters"}`` and return it as a layer; 400 naming any fault."""
    if not isinstance(raw, Mapping):
        raise BadRequest(f"the {what} must be an object with instructions and parameters")
    unknown = sorted(str(key) for key in raw if key not in CONFIG_FIELDS)
    if unknown:
        raise BadRequest(f"the {what} has unknown field(s) {', '.join(unknown)}",
                         details={"unknown": unknown, "allowed": list(CONFIG_FIELDS)})
    instructions = raw.get("instructions") or ""
    if not isinstance(instructions, str):
        raise BadRequest(f"{what}.instructions must be a string")
    if len(instructions) > MAX_INSTRUCTIONS_LENGTH:
        raise BadRequest(f"{what}.instructions is longer than {MAX_INSTRUCTIONS_LENGTH} characters",
                         details={"length": len(instructions), "limit": MAX_INSTRUCTIONS_LENGTH})
    if "\x00" in instructions:
        raise BadRequest(f"{what}.instructions may not contain NUL characters")
    return PromptConfig(instructions=instructions.strip(),
                        parameters=validate_parameters(raw.get("parameters"), what))


def domain_config_key(domain: str) -> str:
    """Return the record key of a domain's configuration (the domain normalised as everywhere else)."""
    return f"domain/{domain}"


def load_configuration(metadata: MetadataStore, tenant: Tenant,
                       domain: str) -> tuple[PromptConfig, PromptConfig]:
    """Return the tenant's ``(domain_config, user_config)``; a layer never saved is empty."""
    return (_load(metadata, tenant, domain_config_key(domain)),
            _load(metadata, tenant, USER_KEY))


def load_user_config(metadata: MetadataStore, tenant: Tenant) -> PromptConfig:
    """Return the tenant's own configuration layer (empty when never saved)."""
    return _load(metadata, tenant, USER_KEY)


def save_domain_config(metadata: MetadataStore, tenant: Tenant, domain: str, raw: object) -> PromptConfig:
    """Validate ``raw`` and store it as the tenant's configuration of ``domain``, replacing the previous one."""
    config = parse_config(raw, "domain configuration")
    key = domain_config_key(domain)
    metadata.put(COLLECTION, tenant.user_id, key, config.to_dict(), parent="domain")
    return config


def save_user_config(metadata: MetadataStore, tenant: Tenant, raw: object) -> PromptConfig:
    """Validate ``raw`` and store it as the tenant's own configuration, replacing the previous one."""
    config = parse_config(raw, "user configuration")
    metadata.put(COLLECTION, tenant.user_id, USER_KEY, config.to_dict(), parent="user")
    return config


def _load(metadata: MetadataStore, tenant: Tenant, key: str) -> PromptConfig:
    try:
        data = metadata.get(COLLECTION, tenant.user_id, key).data
    except NotFound:
        return PromptConfig()
    return _from_stored(data, key)


def _from_stored(data: Mapping[str, Any], key: str) -> PromptConfig:
    # Stored records were valid when written; a parameter retired or narrowed since then is dropped with a
    # warning rather than failing every question in the domain.
    parameters = {}
    for name, value in (data.get("parameters") or {}).items():
        if name not in PARAMETERS:
            log.warning("ignoring stored prompt parameter %r of %s: no longer a known parameter", name, key)
            continue
        try:
            parameters[name] = check_value(name, value, key)
        except BadRequest as exc:
            log.warning("ignoring stored prompt parameter: %s", exc.message)
    instructions = data.get("instructions") if isinstance(data.get("instructions"), str) else ""
    return PromptConfig(instructions=instructions[:MAX_INSTRUCTIONS_LENGTH], parameters=parameters)
