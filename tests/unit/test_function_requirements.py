"""Each function deploys only the dependencies its code can import: functions/<name>/requirements.txt.

The Terraform packaging (modules/function/source_files) ships a function's own requirements file when there
is one. What a function needs is found statically (``function_imports``: imports at start and lazy ones at
request time alike), mapped to installed distributions; its file must pin exactly those that requirements.txt
pins, with the same pins, and requirements.txt (the emulator's and the tests') is exactly their union.
"""

from __future__ import annotations

import functools
import os
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.unit.function_imports import distribution_of, reachable_imports

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = sorted(path.parent.name for path in (ROOT / "functions").glob("*/main.py"))
# Always installed: the runtime that serves the function imports it, our code does not.
RUNTIME = {"functions-framework"}
# Loaded by a library from a name in a string, not by an import of ours: SQLAlchemy and the Cloud SQL
# connector load the Postgres driver that a URL (postgresql+pg8000) or an argument ("pg8000") names.
LOADED_BY_NAME = {"sqlalchemy": {"pg8000"}, "cloud-sql-python-connector": {"pg8000"}}


def pins(path: Path) -> dict[str, str]:
    """Canonical distribution name -> its requirement line, from a requirements file."""
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return {canonicalize_name(Requirement(line).name): line for line in lines if line and not line.startswith("#")}


@functools.cache
def needed(function: str) -> frozenset[str]:
    """Canonical names of the distributions the function's code can import (and the runtime)."""
    modules = reachable_imports(ROOT, f"functions.{function}.main")
    unknown = sorted(module for module in modules if distribution_of(module) is None)
    assert not unknown, f"{function} imports modules no installed distribution provides: {unknown}"
    found = {canonicalize_name(distribution_of(module)) for module in modules} | RUNTIME
    return frozenset(found.union(*(LOADED_BY_NAME.get(name, set()) for name in found)))


def installed_with(names: set[str]) -> set[str]:
    """``names`` and every distribution pip installs with them (their requirements, without extras)."""
    seen: set[str] = set()
    pending = list(names)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        for line in metadata.requires(name) or ():
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(canonicalize_name(requirement.name))
    return seen


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_function_pins_exactly_what_its_code_imports(function):
    own_file = ROOT / "functions" / function / "requirements.txt"
    assert own_file.exists(), f"functions/{function}/requirements.txt is missing: it would deploy everything"
    listed, shared = pins(own_file), pins(ROOT / "requirements.txt")
    wanted = needed(function)
    assert set(listed) == wanted & set(shared), (
        f"functions/{function}/requirements.txt: add {sorted(wanted & set(shared) - set(listed))}, "
        f"remove {sorted(set(listed) - wanted)}")
    changed = {name: line for name, line in listed.items() if shared.get(name) != line}
    assert not changed, f"pins differ from requirements.txt's: {changed}"
    # What the code imports but requirements.txt does not pin must come with a pinned one (openai with litellm).
    unpinned = wanted - set(shared)
    assert unpinned <= installed_with(set(listed)), f"pin in requirements.txt: {sorted(unpinned)}"


def test_requirements_txt_is_the_union_of_the_functions():
    union = set().union(*(pins(ROOT / "functions" / name / "requirements.txt") for name in FUNCTIONS
                          if (ROOT / "functions" / name / "requirements.txt").exists()))
    unused = set(pins(ROOT / "requirements.txt")) - union
    assert not unused, f"requirements.txt pins what no function imports: {sorted(unused)}"


def test_health_and_prompts_leave_the_heavy_libraries_out():
    heavy = {"litellm", "polars", "pyarrow", "duckdb", "vl-convert-python"}
    for function in ("health", "prompts"):
        assert not heavy & set(pins(ROOT / "functions" / function / "requirements.txt")), function


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_lazy_imports_count_when_their_code_is_reachable(tmp_path):
    root = _tree(tmp_path, {
        "common/__init__.py": "",
        "common/parts.py": ("import yaml\n\nclass Context:\n    def llm(self):\n        import litellm\n"
                            "    def charts(self):\n        import vl_convert\n"
                            "    def __enter__(self):\n        import jwt\n\n"
                            "def unused():\n    import polars\n"),
        "common/child.py": 'import subprocess\nPRELOAD = ("duckdb",)\nsubprocess.run(["python", "-c", "x"])\n'
                           "def serve():\n    import pyarrow\n",
        "functions/f/main.py": ("from common.parts import Context\nimport helper\n\n"
                                "def f(request):\n    return Context().llm()\n"),
        "functions/f/helper.py": "def g():\n    from common import child\n",
    })
    found = reachable_imports(root, "functions.f.main")
    # llm is called; charts and unused are not; dunders run implicitly; a module that runs code by name counts
    # whole, with the modules it names in strings.
    assert found == {"yaml", "litellm", "jwt", "duckdb", "pyarrow"}
    assert {distribution_of(module) for module in found} == {"PyYAML", "litellm", "PyJWT", "duckdb", "pyarrow"}


def test_namespace_packages_resolve_to_the_distribution_of_the_module():
    assert distribution_of("google.cloud.storage.Client") == "google-cloud-storage"
    assert distribution_of("google.api_core.exceptions") == "google-api-core"
    assert distribution_of("no_such_module_anywhere") is None



_ALONE = """
import sys
from packaging.utils import canonicalize_name
from tests.unit.function_imports import distribution_of

distribution_of("google.cloud.storage")  # what it reads, it reads now, before imports are refused
ALLOWED = {allowed!r}


class OnlyItsOwnRequirements:
    '''Refuse what a deployment of the function alone would not have installed.'''

    def find_spec(self, fullname, path=None, target=None):
        owner = distribution_of(fullname)
        if owner and canonicalize_name(owner) not in ALLOWED:
            raise ModuleNotFoundError(f"{{fullname}}: {{owner}} is not installed with the function's requirements")
        return None


sys.meta_path.insert(0, OnlyItsOwnRequirements())
"""


# Requests after the first that load the libraries a function's work needs (the first loads few).
_WARM = {"datasets": """
import io
client, user = app.test_client(), {"X-User-Id": "bench"}
upload = client.post("/api/v1/datasets", headers=user, data={
    "domain": "bench", "file": (io.BytesIO("region,revenue,note\\nNorth,120,café\\nSouth,80,\\n".encode()), "s.csv")})
assert upload.status_code == 201, upload.get_data()
preview = client.get("/api/v1/datasets/bench/s.csv?n=5", headers=user)
assert preview.status_code == 200 and len(preview.get_json()["rows"]) == 2, preview.get_data()
"""}


def _started(function: str) -> str:
    """A program that starts the function as functions-framework does, and answers its first requests."""
    from tests.benchmarks.cold_start import FIRST_REQUEST, first_request_program

    if function not in FIRST_REQUEST:  # cleanup answers only Cloud Scheduler's POST, which does the sweep
        source = ROOT / "functions" / function / "main.py"
        return (f"import functions_framework\napp = functions_framework.create_app(target={function!r}, "
                f"source={str(source)!r}, signature_type='http')\n")
    return first_request_program(function, *FIRST_REQUEST[function]) + _WARM.get(function, "")


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_function_answers_with_only_its_own_requirements_installed(function, tmp_path):
    """What the static walk cannot see (a library importing another by name) fails here: start, first answers."""
    import subprocess
    import sys

    allowed = installed_with(set(pins(ROOT / "functions" / function / "requirements.txt")))
    program = _ALONE.format(allowed=sorted(allowed)) + _started(function)
    result = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "DATA_DIR": str(tmp_path),
                                 "NO_GCE_CHECK": "true", "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    assert result.returncode == 0, result.stderr[-3000:]
