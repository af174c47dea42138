"""Reduce a CDK for Terraform provider's jsii assembly to the schema of its resources and data sources.

How the assembly encodes a Terraform schema (cdktf's provider generator):
- each resource is a class with base ``cdktf.TerraformResource`` (data source: ``cdktf.TerraformDataSource``)
  whose doc summary links its registry page, ``.../docs/resources/<page> <terraform type>``;
- its initializer's ``config`` parameter is a struct (a jsii ``datatype`` interface) with one property per
  argument or nested block the configuration may set; computed-only attributes are absent, as they should be;
- property names are camelCase and may be renamed where they collide with the generated class's own members
  (``build`` becomes ``buildAttribute``), so the real name is taken from the docs' registry link, whose anchor
  is the snake_case name (``{@link .../storage_bucket#lifecycle_rule StorageBucket#lifecycle_rule}``);
- a property is required when it is not ``optional``;
- a nested block is a property typed by another struct: that struct itself for a block that may appear once,
  a union of ``cdktf.IResolvable`` and an array of it for a block that may repeat. Everything else (primitives,
  lists and maps of primitives) is an argument.
The meta-arguments (count, for_each, depends_on, provider, lifecycle, ...) come from the
``cdktf.TerraformMetaArguments`` interface every config struct extends, and are not provider schema.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

SCHEMA_FORMAT = 1  # bump when the reduced shape changes, so cached schemas are rebuilt
_KINDS = {"cdktf.TerraformResource": "resources", "cdktf.TerraformDataSource": "data_sources"}
_TYPE_LINK = re.compile(r"/docs/(?:resources|data-sources)/\S+ (\w+)\}")
# ``#lifecycle_rule StorageBucket#lifecycle_rule}``: the anchor repeated after the class name closes the link.
_NAME_LINK = re.compile(r"#(\w+) \w+#\1\}")
_CAMEL_HUMP = re.compile(r"(?<=[a-z0-9])([A-Z])")


def reduce_assembly(assembly: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return {"resources": {type: schema}, "data_sources": {type: schema}} for every class in the assembly.

    A schema is {"attributes": {name: {"required": bool}},
                 "blocks": {name: {"required": bool, "repeatable": bool, "schema": schema}}}.
    """
    types = assembly["types"]
    reduced: dict[str, dict[str, Any]] = {"resources": {}, "data_sources": {}}
    for definition in types.values():
        kind = _KINDS.get(definition.get("base", ""))
        if kind is None:
            continue
        type_link = _TYPE_LINK.search(definition.get("docs", {}).get("summary", ""))
        if type_link is None:
            raise ValueError(f"{definition['fqn']}: no registry link naming its Terraform type")
        reduced[kind][type_link.group(1)] = _struct_schema(types, _config_fqn(definition))
    if not reduced["resources"] and not reduced["data_sources"]:
        raise ValueError("the assembly holds no Terraform resource or data source")
    return reduced


def _config_fqn(definition: dict[str, Any]) -> str:
    for parameter in definition.get("initializer", {}).get("parameters", []):
        if parameter["name"] == "config":
            return parameter["type"]["fqn"]
    raise ValueError(f"{definition['fqn']}: its initializer takes no config struct")


def _struct_schema(types: dict[str, Any], fqn: str, depth: int = 0) -> dict[str, Any]:
    if depth > 32:
        raise ValueError(f"{fqn}: nested blocks deeper than 32 levels; is the assembly cyclic?")
    attributes: dict[str, Any] = {}
    blocks: dict[str, Any] = {}
    for prop in _struct_properties(types, fqn):
        name = terraform_name(prop)
        required = not prop.get("optional", False)
        nested = _nested_struct(types, prop["type"])
        if nested is None:
            attributes[name] = {"required": required}
        else:
            nested_fqn, repeatable = nested
            blocks[name] = {"required": required, "repeatable": repeatable,
                            "schema": _struct_schema(types, nested_fqn, depth + 1)}
    return {"attributes": attributes, "blocks": blocks}


def _struct_properties(types: dict[str, Any], fqn: str) -> Iterator[dict[str, Any]]:
    """The struct's own properties and those of the structs it extends within this assembly (not cdktf's)."""
    definition = types[fqn]
    yield from definition.get("properties", [])
    for parent in definition.get("interfaces", []):
        if parent in types:
            yield from _struct_properties(types, parent)


def _nested_struct(types: dict[str, Any], type_ref: dict[str, Any]) -> tuple[str, bool] | None:
    """(struct fqn, repeatable) when the property is a nested block, None when it is an argument."""
    fqn = type_ref.get("fqn")
    if fqn is not None:
        return (fqn, False) if types.get(fqn, {}).get("datatype") else None
    for member in type_ref.get("union", {}).get("types", []):
        collection = member.get("collection", {})
        element = collection.get("elementtype", {}).get("fqn")
        if collection.get("kind") == "array" and types.get(element, {}).get("datatype"):
            return element, True
    return None


def terraform_name(prop: dict[str, Any]) -> str:
    """The property's real (snake_case) name: its registry link's anchor, else its camelCase name converted."""
    for text in _doc_strings(prop.get("docs", {})):
        link = _NAME_LINK.search(text)
        if link:
            return link.group(1)
    return _CAMEL_HUMP.sub(r"_\1", prop["name"]).lower()


def _doc_strings(docs: Any) -> Iterator[str]:
    # The link is usually in ``remarks`` or ``summary``; jsii moves it to ``custom`` when a doc tag swallowed it.
    if isinstance(docs, str):
        yield docs
    elif isinstance(docs, dict):
        for value in docs.values():
            yield from _doc_strings(value)
