"""Cold start: a fresh interpreter imports a function's module and answers its first request."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The first request each function answers, and its status: cheap, but through the whole stack (auth, backends).
FIRST_REQUEST = {
    "health": ("GET", "/api/v1/health", 200),
    "datasets": ("GET", "/api/v1/datasets", 200),
    "legacy": ("GET", "/datasets?domain=bench", 200),
    "queries": ("GET", "/api/v1/queries/q_unknown", 404),
    "sessions": ("GET", "/api/v1/sessions", 200),
    "charts": ("GET", "/api/v1/charts", 200),
    "agents": ("POST", "/tasks/plan", 400),
    "postgres": ("GET", "/api/v1/postgres/connections", 200),
    "llm": ("GET", "/api/v1/llm/keys", 200),
    "prompts": ("GET", "/api/v1/prompts", 200),
}

_PROGRAM = """
import functions_framework
app = functions_framework.create_app(target={name!r}, source={source!r}, signature_type="http")
response = app.test_client().open({path!r}, method={method!r}, headers={{"X-User-Id": "bench"}}, json={{}})
assert response.status_code == {status}, response.get_data()
"""

# What the original monolith imported at start-up (LEGACY_API.md §0): Flask, Polars, PandasAI, LiteLLM, Google.
_LEGACY_IMPORTS = "import flask, polars, litellm, google.cloud.storage, google.cloud.firestore"


def first_request_program(name: str, method: str, path: str, status: int) -> str:
    """The program that loads one function alone and checks its first answer."""
    source = os.path.join(ROOT, "functions", name, "main.py")
    return _PROGRAM.format(name=name, source=source, method=method, path=path, status=status)


def _time_process(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def _env(data_dir: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": ROOT, "DATA_DIR": data_dir, "NO_GCE_CHECK": "true",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LOG_LEVEL": "ERROR"}


def measure_functions(repeat: int) -> Iterator[tuple[str, list[float]]]:
    """Yield (function, seconds per cold start) for each benchmarked function."""
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as data_dir:
        env = _env(data_dir)
        for name, (method, path, status) in FIRST_REQUEST.items():
            program = first_request_program(name, method, path, status)
            _time_process([sys.executable, "-c", program], env)  # warm the OS file cache, as a deploy would be
            yield name, [_time_process([sys.executable, "-c", program], env) for _ in range(repeat)]


def measure_legacy_imports(repeat: int, python: str) -> Iterator[tuple[str, list[float]]]:
    """Yield the original monolith's import-set time, with PandasAI when ``python`` has it."""
    env = _env(tempfile.gettempdir())
    has_pandasai = subprocess.run([python, "-c", "import pandasai"], env=env, capture_output=True).returncode == 0
    imports = _LEGACY_IMPORTS + (", pandasai" if has_pandasai else "")
    label = "original monolith imports" + ("" if has_pandasai else " (without PandasAI: not installed)")
    _time_process([python, "-c", imports], env)
    yield label, [_time_process([python, "-c", imports], env) for _ in range(repeat)]
