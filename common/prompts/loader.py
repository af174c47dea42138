"""Load the prompt directory once per process, and hand templates out through a ``PromptCatalog``.

Callers ask a catalog for a template by name and never read files themselves. The admin overrides that come
later (``PUT /api/v1/prompts/{name}``: a new version stored in the metadata store, read through a TTL cache)
become a second catalog that wraps this one and validates each override with ``template_from_mapping``; every
caller keeps working unchanged.
"""

from __future__ import annotations

import functools
import os
import pathlib
import types
from collections.abc import Mapping
from typing import Protocol

import yaml

from common.errors import NotFound
from common.prompts.templates import PromptError, PromptTemplate, template_from_mapping

DEFAULT_PROMPTS_DIRECTORY = pathlib.Path(__file__).resolve().parents[2] / "prompts"
# What the repository ships; a test checks that every one of them loads.
SHIPPED_PROMPTS = ("planner", "manipulator", "visualizer", "analyst", "suggest", "text_answer")
# The C loader parses several times faster, which a cold start notices; fall back where it is not built.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class PromptCatalog(Protocol):
    """Where templates come from. ``get`` returns a checked template or raises ``NotFound``; ``names`` is sorted."""

    def get(self, name: str) -> PromptTemplate:
        """Return the current template called ``name``."""

    def names(self) -> list[str]:
        """Return the name of every template, sorted."""


class FilePromptCatalog:
    """The shipped YAML files (or any directory of them), loaded on first use."""

    def __init__(self, directory: str | os.PathLike[str] = DEFAULT_PROMPTS_DIRECTORY):
        self._directory = directory

    def get(self, name: str) -> PromptTemplate:
        """Return the template called ``name``, or raise ``NotFound``."""
        templates = load_prompts(self._directory)
        if name not in templates:
            raise NotFound(f"no prompt named {name!r}", details={"available": sorted(templates)})
        return templates[name]

    def names(self) -> list[str]:
        """Return the name of every template in the directory, sorted."""
        return sorted(load_prompts(self._directory))


def load_prompts(directory: str | os.PathLike[str] = DEFAULT_PROMPTS_DIRECTORY) -> dict[str, PromptTemplate]:
    """Load and check every ``*.yaml`` prompt in ``directory``, once per process per directory."""
    return dict(_load_directory(str(pathlib.Path(directory).resolve())))


def clear_prompt_cache() -> None:
    """Forget every loaded directory, so the next ``load_prompts`` reads the files again."""
    _load_directory.cache_clear()


@functools.lru_cache(maxsize=16)
def _load_directory(directory: str) -> Mapping[str, PromptTemplate]:
    # A failed load raises and is therefore not cached: fixing the file is enough to retry.
    paths = sorted(pathlib.Path(directory).glob("*.yaml"))
    if not paths:
        raise PromptError(directory, "no *.yaml prompt files in this directory")
    return types.MappingProxyType({path.stem: load_prompt_file(path) for path in paths})


def load_prompt_file(path: str | os.PathLike[str]) -> PromptTemplate:
    """Read and check one prompt file; its ``name`` must equal the file's stem."""
    path = pathlib.Path(path)
    source = str(path)
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except OSError as exc:
        raise PromptError(source, f"cannot be read: {exc.strerror or exc}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise PromptError(source, f"is not valid YAML: {exc}") from None
    return template_from_mapping(document, source, expected_name=path.stem)
