"""Check that terraform/'s provider requirements name the releases whose schemas are checked.

The schemas are of one exact release each (providers.yaml), so a version constraint must admit that release
and no other minor version: ``= 6.50.0`` / ``6.50.0`` exactly, or ``~> 6.50.0`` (its patch releases, whose
schemas do not change by semver). A requirement without a version (a module's, leaving it to the root) is fine.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from tools.tf_validate.hcl_check import Problem
from tools.tf_validate.hcl_source import ProviderRequirement
from tools.tf_validate.pins import ProviderPin

_MATCHING = re.compile(r"^\s*(?:=\s*|~>\s*)?v?(\d+\.\d+\.\d+)\s*$")


def check_requirements(requirements: Iterable[ProviderRequirement], pins: dict[str, ProviderPin]) -> Iterator[Problem]:
    """Problems of required_providers entries that name another source or release than the pinned schema."""
    for requirement in requirements:
        address = f"required_providers.{requirement.local_name}"

        def problem(message: str, requirement: ProviderRequirement = requirement, address: str = address) -> Problem:
            return Problem(requirement.file, requirement.line, address, message)

        pin = pins.get(requirement.local_name)
        if pin is None:
            yield problem("no pinned schema for this provider (tools/tf_validate/providers.yaml)")
            continue
        if requirement.source and _normalised_source(requirement.source) != pin.source:
            yield problem(f"source {requirement.source!r}, but the pinned schema is of {pin.source}")
        if requirement.version is None:
            continue
        matched = _MATCHING.match(requirement.version)
        if not matched or matched.group(1) != pin.version:
            yield problem(f"version {requirement.version!r}: the checked schema is {pin.source} {pin.version}; "
                          f"pin \"{pin.version}\" (or \"~> {pin.version}\")")


def _normalised_source(source: str) -> str:
    # "hashicorp/google" may also be written with its registry host in front.
    return "/".join(source.lower().split("/")[-2:])
