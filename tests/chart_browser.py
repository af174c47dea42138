"""A chart page as a browser draws it inside a frame, the way the original frontend shows it (``<iframe srcDoc>``).

Runs headless Chromium (the Debian package ``chromium``) when it is installed; tests that need it skip
otherwise, saying so. Nothing is fetched: the page is written to a temporary file and framed from there.
"""

from __future__ import annotations

import html
import json
import pathlib
import re
import shutil
import subprocess

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed "
                                                             "(apt-get install -y chromium)")

# Waits until the framed chart is drawn, then reports what a reader (or a screenshot) would see.
_PARENT = """<!DOCTYPE html><html><body style="margin:0">
<iframe id="frame" style="width:{width}px;height:700px;border:0" srcdoc="{page}"></iframe>
<script>
var timer = setInterval(function () {{
  var doc = document.getElementById("frame").contentDocument;
  var chart = doc && doc.querySelector("#chart > svg, #chart > canvas");
  if (!chart && !(doc && /could not be drawn/.test(doc.body ? doc.body.textContent : ""))) return;
  clearInterval(timer);
  document.body.setAttribute("data-drawn", JSON.stringify({{
    width: chart ? chart.getBoundingClientRect().width : 0, title: doc.title,
    actions: doc.querySelectorAll(".vega-actions, #chart details").length,
    text: doc.body.textContent.slice(0, 200)}}));
}}, 50);
</script></body></html>"""


def drawn_in_frame(page: str, tmp_path: pathlib.Path, *, width: int = 1024) -> dict:
    """Frame ``page`` ``width`` px wide; return the drawn chart's width, the page title and the actions shown."""
    parent = tmp_path / "parent.html"
    parent.write_text(_PARENT.format(width=width, page=html.escape(page, quote=True)), encoding="utf-8")
    result = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=15000",
                             "--dump-dom", parent.as_uri()], capture_output=True, text=True, timeout=120)
    found = re.search(r'data-drawn="([^"]*)"', result.stdout)
    assert found is not None, f"the chart was not drawn: {result.stderr[-1500:]}"
    return json.loads(html.unescape(found.group(1)))


def actions_when_alone(page: str, tmp_path: pathlib.Path) -> int:
    """Open ``page`` on its own (not framed); return how many actions menus it shows."""
    alone = tmp_path / "alone.html"
    alone.write_text(page, encoding="utf-8")
    result = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=15000",
                             "--dump-dom", alone.as_uri()], capture_output=True, text=True, timeout=120)
    assert "<svg" in result.stdout, f"the chart was not drawn: {result.stderr[-1500:]}"
    return len(re.findall(r'class="vega-actions"', result.stdout))
