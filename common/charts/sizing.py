"""Size every chart for its reader, once its spec is checked: the server owns width, height and layout.

A model's spec, or a template's, names no size (any it names is replaced): after the policy has bounded its cost,
``size_chart`` gives each drawn view a size in pixels from its mark, encodings and rows (``view_size``), turns
or thins category labels that would overlap, lays wrapped facets out in rows of ``WRAP_COLUMNS``, and shrinks
all views alike when together they would pass the render budget: the spec's pixel limit, and no more than a
PNG at twice the size can hold (``RENDER_BUDGET``). So the PNG, the SVG and the PDF that embeds the PNG get
fixed sizes, bounded whatever the data or the model says.

The HTML page draws the same spec as wide as its frame (``page_spec``: ``"width": "container"``, fitted in
x); Vega-Lite can do that for one view or a layer, so facets and concatenations keep their pixel widths there.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Sequence
from typing import Any

from common.charts.categories import ViewData
from common.charts.policy import created_names, view_pixels
from common.charts.view_size import ViewSize, faceted_beside, has_facet_channel, mark_type, size_view
from common.charts.worker import MAX_PNG_PIXELS

__all__ = ["RENDER_BUDGET", "WRAP_COLUMNS", "page_spec", "page_title", "size_chart"]

# The PNG is drawn at scale 2 (4 pixels per view pixel), and axes, titles and legends add to the views:
# views of this many pixels together still fit MAX_PNG_PIXELS without the renderer lowering the scale.
RENDER_BUDGET = MAX_PNG_PIXELS // 8
WRAP_COLUMNS = 3
PAGE_AUTOSIZE = {"type": "fit-x", "contains": "padding"}
_CONCATS = ("hconcat", "concat", "vconcat")
_SIDE_KEYS = ("width", "height")
_Plan = tuple[dict, ViewSize]  # a view to size, and its size


def size_chart(spec: dict, column_names: Sequence[str], rows: Sequence[dict], *, max_pixels: int) -> dict:
    """Return a copy of the checked ``spec`` with every view sized for a reader, within the render budget."""
    sized = copy.deepcopy(spec)
    sized.pop("autosize", None)  # the server decides how the chart fits
    plans: list[_Plan] = []
    _walk(sized, ViewData.of(column_names, rows, created_names(spec)), False, plans)
    _write(plans)
    pixels = view_pixels(sized, column_names, rows)
    budget = min(max_pixels, RENDER_BUDGET)
    if pixels > budget:
        factor = math.sqrt(budget / pixels)
        for _, size in plans:
            size.scaled(factor)
        _write(plans)
    for _, size in plans:
        size.settle_labels()
    return sized


def page_spec(spec: dict) -> dict:
    """The sized spec as the HTML page draws it: one view or a layer fills its frame's width."""
    single = "mark" in spec and not has_facet_channel(spec.get("encoding")) or isinstance(spec.get("layer"), list)
    return {**spec, "width": "container", "autosize": dict(PAGE_AUTOSIZE)} if single else spec


def page_title(spec: dict, default: str) -> str:
    """The chart's own title as plain text (a list of lines joined), else ``default``."""
    title = spec.get("title")
    text = title.get("text") if isinstance(title, dict) else title
    if isinstance(text, list):
        text = " ".join(line for line in text if isinstance(line, str))
    return text.strip() if isinstance(text, str) and text.strip() else default


def _walk(node: Any, data: ViewData, beside: bool, plans: list[_Plan]) -> None:
    if not isinstance(node, dict):
        return
    data = data.after(node.get("transform"))
    if isinstance(node.get("spec"), dict):  # a facet or repeat operator: the size is its cell's
        _drop_size(node)
        if (isinstance(node.get("facet"), dict) and "field" in node["facet"]) or isinstance(node.get("repeat"), list):
            node.setdefault("columns", WRAP_COLUMNS)
        _walk(node["spec"], data, beside or _cells_beside(node), plans)
    elif isinstance(node.get("layer"), list):
        plans.append((node, _layer_size(node, data, beside)))
    elif any(isinstance(node.get(key), list) for key in _CONCATS):
        _drop_size(node)
        key = next(key for key in _CONCATS if isinstance(node.get(key), list))
        for child in node[key]:
            _walk(child, data, beside or key != "vconcat", plans)
    else:
        encoding = node.get("encoding") if isinstance(node.get("encoding"), dict) else {}
        if isinstance(encoding.get("facet"), dict):
            encoding["facet"].setdefault("columns", WRAP_COLUMNS)
        plans.append((node, size_view(mark_type(node), encoding, data, beside=beside or faceted_beside(encoding))))


def _layer_size(layer: dict, data: ViewData, beside: bool) -> ViewSize:
    """A layer is one view: sized by its first unit that is not labels or rules drawn over the others."""
    units = list(_layer_units(layer, data, {}))
    for unit in units:
        _drop_size(unit[0])
    primary = next((unit for unit in units if unit[1] not in ("text", "rule")), units[0] if units else None)
    if primary is None:
        return size_view(None, {}, data, beside=beside)
    _, mark, encoding, unit_data = primary
    return size_view(mark, encoding, unit_data, beside=beside or faceted_beside(encoding))


def _layer_units(node: dict, data: ViewData, inherited: dict) -> Iterator[tuple[dict, str | None, dict, ViewData]]:
    """Each unit of a layer with the encoding and data it draws (a layer's encoding is shared)."""
    own = node.get("encoding") if isinstance(node.get("encoding"), dict) else {}
    encoding = {**inherited, **own}
    for child in node["layer"]:
        if not isinstance(child, dict):
            continue
        child_data = data.after(child.get("transform"))
        if isinstance(child.get("layer"), list):
            _drop_size(child)
            yield from _layer_units(child, child_data, encoding)
        else:
            mine = child.get("encoding") if isinstance(child.get("encoding"), dict) else {}
            yield child, mark_type(child), {**encoding, **mine}, child_data


def _cells_beside(node: dict) -> bool:
    """Whether a facet or repeat operator puts its cells side by side (not only in rows)."""
    operator = node.get("facet", node.get("repeat"))
    if isinstance(operator, list):
        return True
    return isinstance(operator, dict) and ("field" in operator or "column" in operator)


def _drop_size(node: dict) -> None:
    for key in _SIDE_KEYS:
        node.pop(key, None)


def _write(plans: list[_Plan]) -> None:
    for node, size in plans:
        node["width"], node["height"] = max(int(size.width), 1), max(int(size.height), 1)
