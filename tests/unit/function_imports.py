"""Which third-party modules each function can import, at any time: at start, or lazily inside a request.

Walking the module import graph (``tests/unit/test_import_graph.py``) is not enough: ``common.bootstrap`` reaches
LiteLLM and vl-convert through lazy imports inside ``Context.llm`` and ``Context.charts``, so every function
would need everything. So code is split into units: a module's top-level code (with its class bodies,
decorators and defaults), and each top-level function or method (with what it nests). A unit is reachable
when its module is imported by reachable code and its name is referenced there (a call, an attribute, a
name handed over as a value); dunders run implicitly, so they count once their module is in. Names are
matched by spelling only, so a method is reached through any object: more than what runs, never less.
Code run by name (``importlib.import_module``, ``python -c``) is not followed by name: such a module counts whole.
"""

from __future__ import annotations

import ast
import functools
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.unit.test_import_graph import _imports, import_targets, module_names

OURS = ("common", "functions", "local_emulator", "tests")
RUNS_BY_NAME = ("import_module(", '"-c"')
_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
MODULE_UNIT = "<module>"


@dataclass
class Unit:
    """Code that runs together: what it imports (ours, and others' dotted names) and the names it mentions."""

    ours: set[str] = field(default_factory=set)
    theirs: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)


def _mentioned(nodes: list[ast.AST]) -> set[str]:
    names = set()
    for root in nodes:
        for node in ast.walk(root):
            if isinstance(node, ast.Name):
                names.add(node.id)
            elif isinstance(node, ast.Attribute):
                names.add(node.attr)
    return names


def _unit(nodes: list[ast.AST], name: str, path: Path, modules: dict[str, Path]) -> Unit:
    unit = Unit(names=_mentioned(nodes))
    for root in nodes:
        for node in _imports(ast.Module(body=[root], type_ignores=[])):
            unit.ours |= import_targets(node, name, path, modules)
            if isinstance(node, ast.Import):
                unit.theirs |= {alias.name for alias in node.names}
            elif not node.level:
                unit.theirs |= {f"{node.module}.{alias.name}" for alias in node.names}
    unit.theirs = {dotted for dotted in unit.theirs if dotted.split(".")[0] not in OURS + tuple(
        name.rpartition(".")[2] for name in unit.ours)}  # a function's neighbour imported by bare name is ours
    return unit


def _named_modules(tree: ast.AST) -> set[str]:
    """The third-party modules a string names (``PRELOAD = ("duckdb", ...)``, handed to ``import_module``)."""
    return {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and _DOTTED.fullmatch(node.value) and node.value.split(".")[0] in _top_level_providers()
            and node.value.split(".")[0] not in OURS}


def units_of(name: str, path: Path, modules: dict[str, Path]) -> dict[str, Unit]:
    """The module's units by name: MODULE_UNIT for its top level, a function's or method's own name for each."""
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text, filename=str(path))
    if name.startswith("functions.") or any(marker in text for marker in RUNS_BY_NAME):
        whole = _unit([tree], name, path, modules)
        if any(marker in text for marker in RUNS_BY_NAME):
            whole.theirs |= _named_modules(tree)
        return {MODULE_UNIT: whole}
    top: list[ast.AST] = []
    bodies: dict[str, list[ast.AST]] = {}
    definitions = ast.FunctionDef | ast.AsyncFunctionDef
    for statement in tree.body:
        members = statement.body if isinstance(statement, ast.ClassDef) else [statement]
        if isinstance(statement, ast.ClassDef):
            top += [*statement.bases, *statement.keywords, *statement.decorator_list]
        for member in members:
            if isinstance(member, definitions):
                top += [*member.decorator_list, member.args, *filter(None, [member.returns])]
                bodies.setdefault(member.name, []).extend(member.body)
            else:
                top.append(member)
    units = {MODULE_UNIT: _unit(top, name, path, modules)}
    units.update({unit_name: _unit(body, name, path, modules) for unit_name, body in bodies.items()})
    return units


def _parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:end]) for end in range(1, len(parts) + 1)]


@functools.cache
def _project_units(root: Path) -> tuple[dict[str, Path], dict[str, dict[str, Unit]]]:
    modules = module_names(root)
    return modules, {name: units_of(name, path, modules) for name, path in modules.items()}


def reachable_imports(root: Path, entry: str) -> set[str]:
    """Dotted names of the third-party modules code reachable from module ``entry`` may import."""
    modules, units = _project_units(root)
    loaded = {parent for parent in _parents(entry) if parent in modules}
    reached: set[tuple[str, str]] = set()
    names: set[str] = set()
    changed = True
    while changed:  # until no unit is newly reached: a name mentioned late may reach a module loaded early
        changed = False
        for module in sorted(loaded):
            for unit_name, unit in units[module].items():
                runs = unit_name == MODULE_UNIT or unit_name in names or (
                    unit_name.startswith("__") and unit_name.endswith("__"))
                if runs and (module, unit_name) not in reached:
                    reached.add((module, unit_name))
                    names |= unit.names
                    # importing a.b.c runs a/__init__ and a/b/__init__ first
                    loaded |= {parent for target in unit.ours for parent in _parents(target) if parent in modules}
                    changed = True
    return {dotted for module, unit_name in reached for dotted in units[module][unit_name].theirs
            if dotted.split(".")[0] not in sys.stdlib_module_names}


@functools.cache
def _top_level_providers() -> dict[str, list[str]]:
    from importlib import metadata

    return metadata.packages_distributions()


@functools.cache
def _files_of(distribution: str) -> frozenset[str]:
    from importlib import metadata

    return frozenset(str(file) for file in metadata.distribution(distribution).files or ())


def distribution_of(dotted: str) -> str | None:
    """The installed distribution that provides module ``dotted`` (or its nearest parent module), unimported.

    A namespace package (``google``) has many providers: the one that installed the module's own file wins.
    """
    parts = dotted.split(".")
    providers = sorted(set(_top_level_providers().get(parts[0], [])))
    if len(providers) <= 1:
        return providers[0] if providers else None
    for end in range(len(parts), 1, -1):
        path = "/".join(parts[:end])
        for provider in providers:
            if {f"{path}/__init__.py", f"{path}.py"} & _files_of(provider):
                return provider
    return None
