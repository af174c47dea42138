"""Read Terraform files into the resource and data blocks (and provider requirements) they declare.

python-hcl2 keeps the block structure (``explicit_blocks``: a block is a dict marked ``__is_block__``, so
``labels = {...}`` stays an argument and ``versioning {...}`` a block) but gives no line numbers cheaply; each
declaration's line is found from its header in the text instead.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
from collections.abc import Iterator
from typing import Any

import hcl2

_OPTIONS = hcl2.SerializationOptions(with_comments=False, explicit_blocks=True, strip_string_quotes=True)


@dataclasses.dataclass(frozen=True)
class Declaration:
    """One ``resource`` or ``data`` block: where it is, what it is, and its parsed body."""

    kind: str  # "resource" or "data"
    type: str
    name: str
    body: dict[str, Any]
    file: str
    line: int | None

    @property
    def address(self) -> str:
        return f"{'data.' if self.kind == 'data' else ''}{self.type}.{self.name}"


@dataclasses.dataclass(frozen=True)
class ProviderRequirement:
    """One entry of a ``terraform { required_providers { ... } }`` block."""

    local_name: str
    source: str | None
    version: str | None
    file: str
    line: int | None


def tf_files(root: pathlib.Path) -> list[pathlib.Path]:
    """Every .tf file under root, providers' download directories (.terraform) excluded."""
    return sorted(path for path in root.rglob("*.tf") if ".terraform" not in path.parts)


def parse_text(text: str) -> dict[str, Any]:
    return hcl2.loads(text, serialization_options=_OPTIONS)


def declarations(text: str, file: str) -> Iterator[Declaration]:
    """Yield every resource and data block of one file's text."""
    document = parse_text(text)
    for kind in ("resource", "data"):
        for entry in document.get(kind, []):
            for block_type, named in entry.items():
                for name, body in named.items():
                    line = _line_of(text, rf'^[ \t]*{kind}\s+"?{re.escape(block_type)}"?\s+"?{re.escape(name)}"?\s*\{{')
                    yield Declaration(kind, block_type, name, body, file, line)


def provider_requirements(text: str, file: str) -> Iterator[ProviderRequirement]:
    """Yield every required_providers entry of one file's text."""
    for terraform_block in parse_text(text).get("terraform", []):
        for required in terraform_block.get("required_providers", []):
            for local_name, spec in required.items():
                if local_name.startswith("__") or not isinstance(spec, dict):
                    continue
                line = _line_of(text, rf'^[ \t]*"?{re.escape(local_name)}"?\s*=\s*\{{', after="required_providers")
                yield ProviderRequirement(local_name, spec.get("source"), spec.get("version"), file, line)


def is_block_list(value: Any) -> bool:
    """Whether a parsed value is one or more blocks (rather than an argument's list or object)."""
    return isinstance(value, list) and bool(value) and all(_is_block(item) or is_labelled_block(item) for item in value)


def is_labelled_block(item: Any) -> bool:
    """``name "label" { ... }`` parses to {"label": {...block...}}: a block, though no provider block takes labels."""
    return isinstance(item, dict) and not _is_block(item) and bool(item) and all(
        _is_block(body) for _, body in fields(item))


def _is_block(item: Any) -> bool:
    return isinstance(item, dict) and bool(item.get("__is_block__"))


def fields(body: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """A body's arguments and blocks, without python-hcl2's ``__marker__`` keys."""
    for key, value in body.items():
        if not (key.startswith("__") and key.endswith("__")):
            yield key, value


def _line_of(text: str, header: str, after: str = "") -> int | None:
    start = max(text.find(after), 0) if after else 0
    match = re.compile(header, re.M).search(text, start)
    return text.count("\n", 0, match.start()) + 1 if match else None
