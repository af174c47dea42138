"""An instance pays for the model library and the chart renderer in the background after its first request,
so the first question does not: nothing of it happens at import, all of it after the first request."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PROGRAM = """
import sys, functions_framework
from common import warm_up
app = functions_framework.create_app(target="agents", source="functions/agents/main.py", signature_type="http")
print("at import:", "litellm" in sys.modules, warm_up._started.is_set())
response = app.test_client().post("/tasks/plan", json={})
print("first request:", response.status_code)
assert warm_up.done.wait(120), "the warm-up never finished"
from common.charts import render
from common.analysis import sql_process
print("after:", "litellm" in sys.modules, "vl_convert" in sys.modules, render.default_renderer()._process is not None,
      sql_process._LAUNCHER._process is not None)
"""


def test_the_first_request_starts_the_warm_up_in_the_background(tmp_path):
    result = subprocess.run([sys.executable, "-c", PROGRAM], cwd=ROOT, capture_output=True, text=True, timeout=180,
                            env={**os.environ, "PYTHONPATH": ROOT, "DATA_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert "at import: False False" in lines
    assert "first request: 400" in lines  # answered at once, not after the warm-up
    assert "after: True False True True" in lines  # vl_convert runs in the renderer's worker, not here
