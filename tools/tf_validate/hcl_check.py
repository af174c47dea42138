"""Check resource and data blocks against a provider schema: known type, arguments and nested blocks, and
every required argument and block present.

A schema is the reduced shape of ``jsii_schema``: {"attributes": {name: {"required"}}, "blocks": {name:
{"required", "repeatable", "schema"}}}. Schemas are looked up by the provider's local name: the resource type's
prefix (``google_storage_bucket`` -> google), or the ``provider`` meta-argument when it is set
(``provider = google-beta`` or ``google-beta.alias`` -> google-beta).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from tools.tf_validate.hcl_source import Declaration, fields, is_block_list, is_labelled_block

# Terraform's own arguments and blocks; the provider's schema never defines these at the top level.
META_ARGUMENTS = {
    "resource": {"count", "for_each", "depends_on", "provider", "lifecycle", "provisioner", "connection"},
    "data": {"count", "for_each", "depends_on", "provider", "lifecycle"},
}
_SCHEMA_KIND = {"resource": "resources", "data": "data_sources"}
_DYNAMIC_ARGUMENTS = {"for_each", "iterator", "labels", "content"}


@dataclasses.dataclass(frozen=True)
class Problem:
    """One finding, printed as ``file:line: address: message``."""

    file: str
    line: int | None
    address: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.address}: {self.message}"


def provider_of(declaration: Declaration) -> str:
    """The local name of the provider that manages this block."""
    chosen = declaration.body.get("provider")
    if isinstance(chosen, str) and chosen:
        return chosen.removeprefix("${").removesuffix("}").split(".")[0].strip()
    return declaration.type.split("_")[0]


def check_declaration(declaration: Declaration, schemas: dict[str, dict[str, Any]]) -> list[Problem]:
    """Every problem of one resource or data block, against the schema of the provider that manages it."""
    def problem(message: str) -> Problem:
        return Problem(declaration.file, declaration.line, declaration.address, message)

    provider = provider_of(declaration)
    provider_schema = schemas.get(provider)
    if provider_schema is None:
        return [problem(f"provider {provider!r} has no pinned schema (tools/tf_validate/providers.yaml)")]
    kind = "data source" if declaration.kind == "data" else "resource"
    type_schema = provider_schema[_SCHEMA_KIND[declaration.kind]].get(declaration.type)
    if type_schema is None:
        return [problem(f"unknown {kind} type for {_release(provider, provider_schema)}")]
    meta = META_ARGUMENTS[declaration.kind]
    body = {key: value for key, value in declaration.body.items() if key not in meta}
    return [problem(message) for message in check_body(body, type_schema, path="")]


def check_body(body: dict[str, Any], schema: dict[str, Any], path: str) -> Iterator[str]:
    """Problems of one block body (recursively), each message naming its nested path (``a.b.c``)."""
    attributes, blocks = schema["attributes"], schema["blocks"]
    present_blocks: set[str] = set()
    for key, value in fields(body):
        where = path + key
        if key == "dynamic" and isinstance(value, list):
            yield from _check_dynamic(value, blocks, path, present_blocks)
        elif is_block_list(value):
            if key in blocks:
                present_blocks.add(key)
                if len(value) > 1 and not blocks[key]["repeatable"]:
                    yield f"block {where!r} may appear only once (found {len(value)})"
                for nested in value:
                    if is_labelled_block(nested):
                        yield f"block {where!r} takes no labels"
                    else:
                        yield from check_body(nested, blocks[key]["schema"], where + ".")
            elif key in attributes:
                yield f"{where!r} is an argument, not a block: write {key} = ..."
            else:
                yield f"unknown block {where!r}"
        elif key in blocks:
            yield f"{where!r} is a block, not an argument: write {key} {{ ... }}"
        elif key not in attributes:
            yield f"unknown argument {where!r}"
    for name, spec in attributes.items():
        if spec["required"] and name not in body:
            yield f"missing required argument {path + name!r}"
    for name, spec in blocks.items():
        if spec["required"] and name not in present_blocks:
            yield f"missing required block {path + name!r}"


def _check_dynamic(dynamics: list[dict[str, Any]], blocks: dict[str, Any], path: str,
                   present_blocks: set[str]) -> Iterator[str]:
    """``dynamic "x" { for_each = ...; content { ... } }`` is block x (present, whatever for_each yields)."""
    for dynamic in dynamics:
        for label, generator in fields(dynamic):
            where = path + label
            if label not in blocks:
                yield f"unknown block {where!r} (dynamic)"
                continue
            present_blocks.add(label)
            for key, _ in fields(generator):
                if key not in _DYNAMIC_ARGUMENTS:
                    yield f"unknown argument {key!r} in dynamic {where!r} (only for_each, iterator, labels, content)"
            for content in generator.get("content", []):
                yield from check_body(content, blocks[label]["schema"], where + ".")


def _release(provider: str, provider_schema: dict[str, Any]) -> str:
    version = provider_schema.get("provider", {}).get("version")
    return f"{provider} {version}" if version else provider
