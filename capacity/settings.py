"""The sizing an environment deploys, read from its Terraform: the functions' concurrency and instance bounds, and
the pipeline queue's rate limits. Parsed with python-hcl2 from the same files Terraform reads, so the model checks
the settings that deploy, not a copy of them.

An environment's ``function_overrides`` comes from its operator's terraform.tfvars (git-ignored), which starts as
``terraform.tfvars.example``: the example's map is the sizing the repository recommends for that environment, and
without one the stack's defaults apply. The queue's concurrent dispatches follow the agents function's slots, as
modules/stack/main.tf computes them.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
from typing import Any

import hcl2

ROOT = pathlib.Path(__file__).resolve().parents[1]
STACK = ROOT / "terraform" / "modules" / "stack"
ENVIRONMENTS = ROOT / "terraform" / "environments"
# The stack's own rule for the queue's concurrent dispatches; settings_of mirrors it, and refuses to guess if
# the stack computes it differently.
CONCURRENT_DISPATCHES_RULE = ('max_concurrent_dispatches = try(local.function_settings["agents"].max_instances * '
                              'local.function_settings["agents"].concurrency, 10)')
MODELLED = ("agents", "queries", "legacy")


@dataclasses.dataclass(frozen=True)
class ServiceSizing:
    concurrency: int  # requests one instance serves at once
    min_instances: int
    max_instances: int

    @property
    def slots(self) -> int:
        return self.concurrency * self.max_instances


@dataclasses.dataclass(frozen=True)
class Sizing:
    dispatches_per_second: float  # the queue's token rate
    max_concurrent_dispatches: int
    services: dict[str, ServiceSizing]  # agents, queries, legacy

    def replace(self, **changes: Any) -> Sizing:
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)


# Before the capacity model: the queue's old defaults, agents taking one stage per instance (at most 20), and the
# prod example's queries and legacy (legacy one request per instance).
OLD_SIZING = Sizing(dispatches_per_second=10, max_concurrent_dispatches=20, services={
    "agents": ServiceSizing(concurrency=1, min_instances=0, max_instances=20),
    "queries": ServiceSizing(concurrency=80, min_instances=1, max_instances=20),
    "legacy": ServiceSizing(concurrency=1, min_instances=1, max_instances=20),
})


def parse_hcl(text: str) -> dict[str, Any]:
    """HCL text as a dict with unquoted strings and without python-hcl2's ``__markers__``."""
    options = hcl2.SerializationOptions(strip_string_quotes=True, with_comments=False, explicit_blocks=False)
    return _without_markers(hcl2.loads(text, serialization_options=options))


def _without_markers(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_markers(v) for k, v in value.items() if not (k.startswith("__") and k.endswith("__"))}
    if isinstance(value, list):
        return [_without_markers(v) for v in value]
    return value


def _blocks(directory: pathlib.Path, kind: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.tf")):
        for entry in parse_hcl(path.read_text(encoding="utf-8")).get(kind, []):
            found.update(entry)
    return found


def _stack_argument(environment: pathlib.Path, name: str) -> Any:
    """What the environment's stack call gets for ``name``: a literal, the example tfvars, or the stack default."""
    call = _blocks(environment, "module")["stack"]
    default = _blocks(STACK, "variable")[name].get("default")
    if name not in call:
        return default
    if f"${{var.{name}}}" != str(call[name]):
        if "${" in str(call[name]):
            raise ValueError(f"{environment.name}: cannot evaluate {name} = {call[name]}")
        return call[name]
    example = environment / "terraform.tfvars.example"
    recommended = parse_hcl(example.read_text(encoding="utf-8")) if example.exists() else {}
    return recommended.get(name, default)


def settings_of(environment: str) -> Sizing:
    """The sizing ``environment`` (dev, prod) deploys."""
    directory = ENVIRONMENTS / environment
    stack_main = re.sub(r"\s+", " ", (STACK / "main.tf").read_text(encoding="utf-8"))
    if CONCURRENT_DISPATCHES_RULE not in stack_main:
        raise ValueError("modules/stack/main.tf no longer derives max_concurrent_dispatches from the agents "
                         "function's slots: update capacity/settings.py to its new rule")
    defaults = _stack_argument(directory, "function_defaults")
    overrides = _stack_argument(directory, "function_overrides") or {}
    services = {}
    for name in MODELLED:
        sized = {**defaults, **{key: value for key, value in overrides.get(name, {}).items() if value is not None}}
        services[name] = ServiceSizing(int(sized["concurrency"]), int(sized["min_instances"]),
                                       int(sized["max_instances"]))
    return Sizing(dispatches_per_second=float(_stack_argument(directory, "pipeline_dispatches_per_second")),
                  max_concurrent_dispatches=services["agents"].slots, services=services)
