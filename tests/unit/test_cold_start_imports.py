"""Cold starts pay for every import: no function imports LiteLLM, Polars, DuckDB or a cloud client at start."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FUNCTIONS = sorted(name for name in os.listdir(os.path.join(ROOT, "functions"))
                   if os.path.exists(os.path.join(ROOT, "functions", name, "main.py")))
HEAVY = {"litellm", "polars", "duckdb", "pyarrow", "vl_convert", "google.cloud.storage", "google.cloud.firestore",
         "sqlalchemy", "reportlab"}
ALLOWED_AT_START: dict[str, set[str]] = {}  # every heavy import waits for the request that needs it


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_module_imports_no_heavy_library(name):
    source = os.path.join(ROOT, "functions", name, "main.py")
    program = (f"import functions_framework, sys\n"
               f"functions_framework.create_app(target={name!r}, source={source!r}, signature_type='http')\n"
               f"print(','.join(sorted(m for m in {sorted(HEAVY)!r} if m in sys.modules)))")
    loaded = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONPATH": ROOT}).stdout.strip()
    loaded_set = set(filter(None, loaded.split(",")))
    assert loaded_set <= ALLOWED_AT_START.get(name, set()), f"{name} imports {loaded_set} at start"


@pytest.mark.parametrize("name", sorted(set(FUNCTIONS) - {"cleanup"}))
def test_each_function_answers_alone(name, tmp_path):
    """`make serve FUNCTION=x`: a function deployed alone answers its first request with default settings."""
    from tests.benchmarks.cold_start import FIRST_REQUEST, first_request_program

    method, path, status = FIRST_REQUEST[name]
    program = first_request_program(name, method, path, status)
    result = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": ROOT, "DATA_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-2000:]
