"""No import cycles among the project's own modules (common, functions, local_emulator).

Edges come from every import statement, module-level or nested in a function, except those under
`if TYPE_CHECKING:` (never executed). `from x import y` goes to `x.y` when that is a module of ours, else to `x`
(its package `__init__` when `x` is a package, which is a real edge: the `__init__` runs first).
Modules of `functions/<name>/` also import their neighbours by bare name (functions-framework puts the
source's directory on `sys.path`), so `import legacy_llm` there is `functions.legacy.legacy_llm`.
"""

import ast
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("common", "functions", "local_emulator")


def module_names(root: Path, packages=PACKAGES) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under the given top-level packages."""
    files = (path for package in packages for path in sorted((root / package).rglob("*.py")))
    return {".".join(p.parts[:-1] if p.name == "__init__" else p.parts): f
            for f in files for p in [f.relative_to(root).with_suffix("")]}


def _imports(tree: ast.AST):
    """Every Import/ImportFrom node at any depth, skipping the bodies of `if TYPE_CHECKING:` (never run)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test).split("."):
            yield from _imports(ast.Module(body=node.orelse, type_ignores=[]))
        else:
            yield from _imports(node)


def import_targets(node: ast.Import | ast.ImportFrom, name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Our modules one import statement of module `name` (file `path`) imports."""

    def resolve(imported: str, near: str) -> str | None:
        """The longest prefix of `imported` that is one of our modules, else a neighbour of package `near`."""
        for candidate, shortest in [(imported, 1)] + ([(f"{near}.{imported}", near.count(".") + 2)] if near else []):
            parts = candidate.split(".")
            for end in range(len(parts), shortest - 1, -1):
                if ".".join(parts[:end]) in modules:
                    return ".".join(parts[:end])
        return None

    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    near = package if package.startswith("functions.") else ""
    if isinstance(node, ast.Import):
        return set(filter(None, (resolve(alias.name, near) for alias in node.names)))
    base = ".".join(package.split(".")[: package.count(".") + 2 - node.level]) if node.level else ""
    source = ".".join(filter(None, (base, node.module)))
    targets = set()
    for alias in node.names:
        submodule = f"{source}.{alias.name}"
        targets.add(submodule if submodule in modules else resolve(source, "" if node.level else near))
    return set(filter(None, targets))


def import_graph(root: Path, packages=PACKAGES) -> dict[str, set[str]]:
    modules = module_names(root, packages)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            graph[name].update(import_targets(node, name, path, modules))
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One shortest cycle through each module that lies on a cycle, deduplicated, as [a, b, ..., a]."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[set[str]] = []

    def connect(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                connect(successor)
                low[node] = min(low[node], low[successor])
            elif successor in stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            connect(node)

    found: dict[frozenset, list[str]] = {}
    for component in components:
        for start in sorted(component):
            previous: dict[str, str] = {}
            queue = deque([start])
            while queue and start not in previous:
                current = queue.popleft()
                for successor in sorted(graph[current] & component):
                    if successor not in previous:
                        previous[successor] = current
                        queue.append(successor)
            path = [start]
            while len(path) == 1 or path[-1] != start:
                path.append(previous[path[-1]])
            chain = path[::-1]
            rotate = chain.index(min(chain[:-1]))
            found.setdefault(frozenset(chain), chain[rotate:-1] + chain[:rotate] + [chain[rotate]])
    return sorted(found.values())


def describe(found: list[list[str]]) -> str:
    return "\n".join(" -> ".join(chain) for chain in found)


def test_project_has_no_import_cycle():
    found = cycles(import_graph(ROOT))
    assert not found, "import cycles:\n" + describe(found)


def test_checker_finds_cycles(tmp_path):
    files = {
        "common/__init__.py": "from common.a import thing\n",  # a package __init__ importing its submodule
        "common/a.py": "def f():\n    from common import b\n",  # nested import of a submodule
        "common/b.py": "from . import VERSION\n",  # relative, not a submodule: back to the package __init__
        "common/c.py": "from .a import thing\nimport common.b\n",  # imports without a cycle
        "common/d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from common import e\n",
        "common/e.py": "from common.d import x\n",  # no cycle: d imports e only for type checking
        "functions/f/main.py": "import json\nimport helper\n",  # a neighbour by bare name
        "functions/f/helper.py": "from functions.f import main\n",
        "local_emulator/__init__.py": "import local_emulator\n",  # self-loop
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert describe(cycles(import_graph(tmp_path))).splitlines() == [
        "common -> common.a -> common.b -> common",
        "functions.f.helper -> functions.f.main -> functions.f.helper",
        "local_emulator -> local_emulator",
    ]
