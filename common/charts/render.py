"""Render a bound Vega-Lite spec offline with vl-convert: a self-contained HTML page, a PNG, an SVG.

vl-convert runs in a child process with its own memory limit and a per-render timeout (``renderer``): a spec
that is too expensive fails that one chart with CHART_TOO_EXPENSIVE, never the server. This process never
imports ``vl_convert``. The worker starts on the first render (about a second), later renders take tens of
milliseconds; ``configure`` sets its limits from the settings (the composition root calls it).

The HTML page is assembled here, not by ``vl_convert.vegalite_to_html``: that function writes the spec into a
``<script>`` as raw JSON, so a title or a data value holding ``</script>`` ends the script and whatever follows
runs in the app's origin (the frontend shows chart HTML in an unsandboxed iframe). Here the spec is JSON with
``<``, ``>``, ``&`` and the JavaScript line separators escaped, so no string can leave its script; the
Vega-Lite, Vega and vega-embed code comes from ``vl_convert.javascript_bundle`` (built once by the worker) and
is inlined (no CDN); and the page declares a Content-Security-Policy under which nothing in it can fetch or
load anything. The page draws the chart as wide as its frame (``sizing.page_spec``); inside a frame (the
original frontend shows charts in an iframe and its PDF export photographs that frame) it shows no actions
menu, so the menu's button is never part of the picture.

Server-side renders allow no base URL at all, so a spec can never make the renderer read a file or a URL.
"""

from __future__ import annotations

import functools
import html
import json
import re
import threading
from typing import Any

from common.charts.renderer import ChartRenderer
from common.charts.sizing import page_spec, page_title
from common.charts.worker import MAX_PNG_PIXELS
from common.config import SETTINGS, Settings

__all__ = ["CONTENT_SECURITY_POLICY", "EMBED_OPTIONS", "MAX_PNG_PIXELS", "configure", "default_renderer",
           "render_html", "render_png", "render_svg", "script_json", "vegalite_version"]

# Vega needs eval (it compiles field accessors) and inline scripts; nothing may be fetched or loaded.
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; "
                           "style-src 'unsafe-inline'; img-src data: blob:; font-src data:; "
                           "base-uri 'none'; form-action 'none'")
# "Open in Vega Editor" would post the chart, data included, to another site; exporting stays (outside frames).
EMBED_OPTIONS = {"renderer": "svg", "actions": {"export": True, "source": False, "compiled": False, "editor": False}}
_SCRIPT_UNSAFE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_DEFAULTS = {setting.name: setting.default for setting in SETTINGS}
_renderer: ChartRenderer | None = None
_renderer_lock = threading.Lock()

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body {{ margin: 0; font-family: sans-serif; }} #chart {{ width: 100%; overflow-x: auto; }}</style>
<script>{bundle}</script>
</head>
<body>
<div id="chart"></div>
<script>
var options = {options};
try {{ if (window.self !== window.top) {{ options.actions = false; }} }} catch (error) {{ options.actions = false; }}
vegaEmbed("#chart", {spec}, options).catch(function (error) {{
  document.getElementById("chart").textContent = "This chart could not be drawn: " + error.message;
}});
</script>
</body>
</html>
"""


def configure(settings: Settings) -> None:
    """Render with the settings' memory and time limits from now on (the worker restarts if they changed)."""
    _use(settings.chart_render_memory_mb, settings.chart_render_timeout_seconds)


def default_renderer() -> ChartRenderer:
    """The process's renderer: the configured one, else one with the settings' default limits."""
    return _renderer or _use(_DEFAULTS["chart_render_memory_mb"], _DEFAULTS["chart_render_timeout_seconds"],
                             replace=False)


def render_html(spec: dict, *, title: str = "Chart") -> str:
    """Return a complete HTML document that draws the sized ``spec`` as wide as its frame, with no network
    access (Vega inlined), titled with the chart's own title (else ``title``)."""
    return _PAGE.format(csp=CONTENT_SECURITY_POLICY, title=html.escape(page_title(spec, title or "Chart")),
                        bundle=_bundle(), spec=script_json(page_spec(spec)), options=script_json(EMBED_OPTIONS))


def render_svg(spec: dict) -> str:
    """Return ``spec`` drawn as an SVG document."""
    return default_renderer().svg(spec)


def render_png(spec: dict, scale: float = 2) -> bytes:
    """Return ``spec`` drawn as a PNG at ``scale`` (lowered when the image would be too large)."""
    return default_renderer().png(spec, scale)


def script_json(value: Any) -> str:
    """Serialise ``value`` as JSON that is safe inside an HTML ``<script>`` element."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    # These characters only occur inside JSON strings, where the escapes mean the same characters.
    return re.sub("[<>&\u2028\u2029]", lambda match: _SCRIPT_UNSAFE[match.group()], text)


@functools.cache
def vegalite_version() -> str:
    """The newest Vega-Lite 5 that vl-convert bundles (specs are v5; its default is a later major)."""
    return default_renderer().vegalite_version()


@functools.cache
def _bundle() -> str:
    bundle = default_renderer().bundle()
    # Any of these inside a <script> would change where the HTML parser thinks the script ends.
    lowered = bundle.lower()
    if "</script" in lowered or "<!--" in lowered or "<script" in lowered:
        raise RuntimeError("the vl-convert JavaScript bundle cannot be inlined in a <script> element")
    return bundle


def _use(memory_mb: int, timeout_seconds: float, *, replace: bool = True) -> ChartRenderer:
    global _renderer
    with _renderer_lock:
        current = _renderer
        if current is not None and (not replace or (current.memory_mb, current.timeout_seconds) ==
                                    (memory_mb, timeout_seconds)):
            return current
        _renderer = ChartRenderer(memory_mb=memory_mb, timeout_seconds=timeout_seconds)
    if current is not None:
        current.close()  # waits for a render in progress on it
    return _renderer
