"""Render a bound Vega-Lite spec offline with vl-convert: a self-contained HTML page, a PNG, an SVG.

``vl_convert`` is imported on first use: only code that renders pays for it. Its first call in a process
starts a JavaScript engine (about a second); later renders take tens of milliseconds.

The HTML page is assembled here, not by ``vl_convert.vegalite_to_html``: that function writes the spec into a
``<script>`` as raw JSON, so a title or a data value holding ``</script>`` ends the script and whatever follows
runs in the app's origin (the frontend shows chart HTML in an unsandboxed iframe). Here the spec is JSON with
``<``, ``>``, ``&`` and the JavaScript line separators escaped, so no string can leave its script; the
Vega-Lite, Vega and vega-embed code comes from ``vl_convert.javascript_bundle`` and is inlined (no CDN); and
the page declares a Content-Security-Policy under which nothing in it can fetch or load anything.

Server-side renders allow no base URL at all, so a spec can never make the renderer read a file or a URL.
"""

from __future__ import annotations

import functools
import html
import json
import math
import re
from typing import Any

from common.charts.spec import ChartSpecError

# Vega needs eval (it compiles field accessors) and inline scripts; nothing may be fetched or loaded.
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; "
                           "style-src 'unsafe-inline'; img-src data: blob:; font-src data:; "
                           "base-uri 'none'; form-action 'none'")
# Bounds the memory of one PNG (4 bytes a pixel): a huge width or many wide bands could otherwise exhaust it.
MAX_PNG_PIXELS = 16_000_000
# "Open in Vega Editor" would post the chart, data included, to another site; exporting stays.
EMBED_OPTIONS = {"renderer": "svg", "actions": {"export": True, "source": False, "compiled": False, "editor": False}}
_SVG_SIZE = re.compile(r"<svg\b[^>]*?\bwidth=\"([\d.]+)\"[^>]*?\bheight=\"([\d.]+)\"")
_SCRIPT_UNSAFE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body {{ margin: 0; font-family: sans-serif; }} #chart {{ width: 100%; }}</style>
<script>{bundle}</script>
</head>
<body>
<div id="chart"></div>
<script>
vegaEmbed("#chart", {spec}, {options}).catch(function (error) {{
  document.getElementById("chart").textContent = "This chart could not be drawn: " + error.message;
}});
</script>
</body>
</html>
"""


def render_html(spec: dict, *, title: str = "Chart") -> str:
    """Return a complete HTML document that draws ``spec`` with no network access (Vega inlined)."""
    return _PAGE.format(csp=CONTENT_SECURITY_POLICY, title=html.escape(title or "Chart"), bundle=_bundle(),
                        spec=script_json(spec), options=script_json(EMBED_OPTIONS))


def render_svg(spec: dict) -> str:
    """Return ``spec`` drawn as an SVG document."""
    vl_convert = _vl_convert()
    try:
        return vl_convert.vegalite_to_svg(spec, vl_version=vegalite_version(), allowed_base_urls=[])
    except ValueError as exc:
        raise _spec_error(exc) from None


def render_png(spec: dict, scale: float = 2) -> bytes:
    """Return ``spec`` drawn as a PNG at ``scale`` (lowered when the image would be too large)."""
    svg = render_svg(spec)
    scale = _fitting_scale(svg, scale)
    try:
        return _vl_convert().svg_to_png(svg, scale=scale)
    except ValueError as exc:
        raise _spec_error(exc) from None


def script_json(value: Any) -> str:
    """Serialise ``value`` as JSON that is safe inside an HTML ``<script>`` element."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    # These characters only occur inside JSON strings, where the escapes mean the same characters.
    return re.sub("[<>&\u2028\u2029]", lambda match: _SCRIPT_UNSAFE[match.group()], text)


@functools.cache
def vegalite_version() -> str:
    """The newest Vega-Lite 5 that vl-convert bundles (specs are v5; its default is a later major)."""
    versions = [v for v in _vl_convert().get_vegalite_versions() if v.split(".")[0] in ("5", "v5")]
    if not versions:
        raise RuntimeError("this vl-convert bundles no Vega-Lite 5")
    return max(versions, key=lambda v: tuple(int(part) for part in v.lstrip("v").split(".")))


@functools.cache
def _bundle() -> str:
    bundle = _vl_convert().javascript_bundle(vl_version=vegalite_version())
    # Any of these inside a <script> would change where the HTML parser thinks the script ends.
    lowered = bundle.lower()
    if "</script" in lowered or "<!--" in lowered or "<script" in lowered:
        raise RuntimeError("the vl-convert JavaScript bundle cannot be inlined in a <script> element")
    return bundle


def _fitting_scale(svg: str, scale: float) -> float:
    size = _SVG_SIZE.search(svg[:2000])
    if size is None:
        raise ChartSpecError("the chart could not be rendered: the renderer gave no image size")
    pixels = float(size.group(1)) * float(size.group(2))
    if pixels > MAX_PNG_PIXELS:
        raise ChartSpecError(f"the chart is too large to render ({size.group(1)} x {size.group(2)} pixels): "
                             "make it smaller or show fewer categories")
    return min(scale, math.sqrt(MAX_PNG_PIXELS / max(pixels, 1.0)))


def _spec_error(exc: Exception) -> ChartSpecError:
    """Turn a vl-convert failure into the first line that says what is wrong with the spec."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    telling = [line for line in lines if not line.endswith("failed:") and not line.startswith("at ")]
    reason = (telling or lines or ["unknown error"])[0]
    return ChartSpecError(f"the chart could not be rendered: {reason[:300]}")


def _vl_convert() -> Any:
    import vl_convert

    return vl_convert
