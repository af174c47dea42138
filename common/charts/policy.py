"""The chart-spec cost policy: how much a model-written spec may make the renderer (and the browser) do.

The spec is hostile (uploaded cell values reach the visualizer's prompt) and Vega can be made to build millions
of rows or pixels from a few characters; one such render used to kill the whole server. So after the spec's
fields are resolved and before anything renders, its cost is bounded; a refusal is ``ChartTooExpensive``
(400 ``CHART_TOO_EXPENSIVE``) saying where and what the limit is, which the visualizer gets for its one retry.
The renderer's own limits (memory, time; ``renderer``) stay as the backstop for what this misses.

- Transforms: an allowlist with bounded parameters (``policy_transforms``).
- Properties anywhere (bins, ticks, sizes, steps, formats, expressions): ``policy_properties``, ``expressions``.
- Views: at most ``MAX_VIEWS`` panels after facets and repeats (each has its own axes and scales), compositions
  nested at most ``MAX_COMPOSITION_DEPTH`` deep, at most ``MAX_LAYERS`` layers per view.
- Marks: at most ``MAX_CHART_MARKS`` rows reach marks in all views together (rows x folded fields x layers x
  repeats, less what aggregates and samples remove). Measured with vl-convert: 100,000 points take ~16 s and
  ~600 MB to draw as SVG and PNG, 10,000 about 1.7 s.
- Pixels: the views' explicit sizes (width x height, a missing side counted at Vega-Lite's default 300)
  together at most ``CHART_MAX_PIXELS``. ``"container"`` and step sizes are allowed: ``sizing`` replaces every
  size afterwards with pixels it bounds the same way (``view_pixels``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence
from typing import Any

from common.charts.policy_properties import check_properties
from common.charts.policy_transforms import Rows, apply_transforms
from common.charts.refusals import ChartTooExpensive

MAX_CHART_MARKS = 50_000
MAX_VIEWS = 50
MAX_LAYERS = 10
MAX_COMPOSITION_DEPTH = 3
DEFAULT_SIDE = 300
_DEFAULT_FACET_BINS = 6  # Vega-Lite's maxbins for row, column and facet
_FACET_CHANNELS = ("row", "column", "facet")
_CONCATS = ("concat", "hconcat", "vconcat")


@dataclasses.dataclass
class _Totals:
    views: int = 0
    marks: int = 0
    pixels: float = 0.0


@dataclasses.dataclass(frozen=True)
class _Scope:
    """What a view inherits: rows so far, how many times it is drawn, its nesting and (in a layer) its size."""

    tuples: int
    copies: int = 1  # repeats: each copy draws every row again
    cells: int = 1  # facets: each cell draws its share of the rows, but has its own axes
    depth: int = 0
    size: tuple[float | None, float | None] = (None, None)
    in_layer: bool = False


def check_cost(spec: dict, column_names: Sequence[str], rows: Sequence[dict], *, max_pixels: int) -> None:
    """Raise ``ChartTooExpensive`` naming the first part of ``spec`` that would cost more than a chart may."""
    check_properties(spec, "spec")
    data = Rows(column_names, rows, created_names(spec))
    totals = _Totals()
    _view(spec, "spec", _Scope(tuples=data.count), data, totals, max_pixels)
    if totals.views > MAX_VIEWS:
        raise ChartTooExpensive(f"the chart would have up to {totals.views} panels (facet cells, repeats, concatenated "
                                f"views); at most {MAX_VIEWS} are allowed: facet by a field with fewer values")
    if totals.marks > MAX_CHART_MARKS:
        raise ChartTooExpensive(f"the chart would draw up to {totals.marks} marks ({data.count} rows, multiplied "
                                f"by folds, layers and repeats); at most {MAX_CHART_MARKS} are allowed: fold fewer "
                                "fields, use fewer layers, or aggregate")
    if totals.pixels > max_pixels:
        raise ChartTooExpensive(f"the chart's views together would be {int(totals.pixels)} pixels; at most "
                                f"{max_pixels} are allowed: make them smaller")


def view_pixels(spec: dict, column_names: Sequence[str], rows: Sequence[dict]) -> float:
    """The pixels of a checked spec's explicitly sized views together, each as often as it is drawn."""
    data = Rows(column_names, rows, created_names(spec))
    totals = _Totals()
    _view(spec, "spec", _Scope(tuples=data.count), data, totals, math.inf)
    return totals.pixels


def created_names(spec: dict) -> set[str]:
    """Every field name the spec's transforms (re)define, whose values are not the result's."""
    return set(_created_names(spec, 0))


def _view(node: Any, where: str, scope: _Scope, data: Rows, totals: _Totals, max_pixels: float) -> None:
    if not isinstance(node, dict):
        return  # the field check has already refused it
    if scope.depth > MAX_COMPOSITION_DEPTH:
        raise ChartTooExpensive(f"{where}: views are nested more than {MAX_COMPOSITION_DEPTH} compositions deep")
    tuples = scope.tuples
    if "transform" in node:
        tuples = apply_transforms(node["transform"], f"{where}.transform", tuples, data)
    size = (_side(node.get("width"), scope.size[0]), _side(node.get("height"), scope.size[1]))
    inner = dataclasses.replace(scope, tuples=tuples, depth=scope.depth + 1, size=(None, None), in_layer=False)
    if isinstance(node.get("spec"), dict):
        if "facet" in node:
            inner = dataclasses.replace(inner, cells=scope.cells * _facet_cells(node["facet"], tuples, data))
        else:
            inner = dataclasses.replace(inner, copies=scope.copies * _repeat_count(node.get("repeat"), where))
        _view(node["spec"], f"{where}.spec", inner, data, totals, max_pixels)
    elif isinstance(node.get("layer"), list):
        if len(node["layer"]) > MAX_LAYERS:
            raise ChartTooExpensive(f"{where}.layer has {len(node['layer'])} layers; at most {MAX_LAYERS}")
        if not scope.in_layer:
            _panel(where, scope, size, 1, totals, max_pixels)
        for index, child in enumerate(node["layer"]):
            layered = dataclasses.replace(inner, size=size, in_layer=True)
            _view(child, f"{where}.layer[{index}]", layered, data, totals, max_pixels)
    elif any(isinstance(node.get(key), list) for key in _CONCATS):
        key = next(key for key in _CONCATS if isinstance(node.get(key), list))
        if len(node[key]) > MAX_VIEWS:
            raise ChartTooExpensive(f"{where}.{key} has {len(node[key])} views; at most {MAX_VIEWS}")
        for index, child in enumerate(node[key]):
            _view(child, f"{where}.{key}[{index}]", inner, data, totals, max_pixels)
    else:
        encoding = node.get("encoding") if isinstance(node.get("encoding"), dict) else {}
        if not scope.in_layer:
            _panel(where, scope, size, _encoding_cells(encoding, tuples, data), totals, max_pixels)
        totals.marks += scope.copies * _marks(encoding, tuples, data)


def _panel(where: str, scope: _Scope, size: tuple[float | None, float | None], cells: int, totals: _Totals,
           max_pixels: float) -> None:
    """Count one drawn view (a unit or a whole layer), as often as repeats and facets draw it."""
    count = scope.copies * scope.cells * cells
    totals.views += count
    width, height = size
    if width is None and height is None:
        return  # default-sized views are bounded by the number of views
    pixels = (width or DEFAULT_SIDE) * (height or DEFAULT_SIDE)
    if pixels > max_pixels:
        raise ChartTooExpensive(f"{where}: width x height is {int(pixels)} pixels; at most {max_pixels} are allowed")
    totals.pixels += pixels * count


def _side(value: Any, inherited: float | None) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else inherited


def _marks(encoding: dict, tuples: int, data: Rows) -> int:
    """Upper bound of the marks a unit view draws from ``tuples`` rows (its encoding may aggregate or impute)."""
    definitions = [definition for channel, value in encoding.items() if channel not in _FACET_CHANNELS
                   for definition in (value if isinstance(value, list) else [value]) if isinstance(definition, dict)]
    grouping = [d.get("field") for d in definitions if "field" in d and not d.get("aggregate") and "impute" not in d]
    if any("impute" in definition for definition in definitions):
        return max(tuples, data.combinations(grouping, tuples))  # every key in every group gets a row
    if any(definition.get("aggregate") for definition in definitions):
        return min(tuples, data.combinations(grouping, tuples))
    return tuples


def _facet_cells(facet: Any, tuples: int, data: Rows) -> int:
    if isinstance(facet, dict) and "field" in facet:
        return _cells_of(facet, tuples, data)
    definitions = [facet.get(key) for key in ("row", "column")] if isinstance(facet, dict) else []
    cells = 1
    for definition in definitions:
        if isinstance(definition, dict):
            cells *= _cells_of(definition, tuples, data)
    return cells


def _encoding_cells(encoding: dict, tuples: int, data: Rows) -> int:
    cells = 1
    for channel in _FACET_CHANNELS:
        if isinstance(encoding.get(channel), dict):
            cells *= _cells_of(encoding[channel], tuples, data)
    return cells


def _cells_of(definition: dict, tuples: int, data: Rows) -> int:
    cells = data.distinct(definition.get("field"), max(tuples, 1))
    binned = definition.get("bin")
    if binned:
        maxbins = binned.get("maxbins", _DEFAULT_FACET_BINS) if isinstance(binned, dict) else _DEFAULT_FACET_BINS
        cells = min(cells, int(maxbins) + 1)
    return cells


def _repeat_count(repeat: Any, where: str) -> int:
    lists = [repeat] if isinstance(repeat, list) else \
        [value for value in repeat.values() if isinstance(value, list)] if isinstance(repeat, dict) else []
    count = 1
    for items in lists:
        count *= max(len(items), 1)
    if count > MAX_VIEWS:
        raise ChartTooExpensive(f"{where}.repeat makes {count} views; at most {MAX_VIEWS} are allowed")
    return count


def _created_names(node: Any, depth: int) -> Iterator[str]:
    """Every field name a transform (re)defines, so its distinct values are not taken from the result."""
    if depth > 200:
        return
    if isinstance(node, list):
        for item in node:
            yield from _created_names(item, depth + 1)
    elif isinstance(node, dict):
        created = node.get("as")
        yield from [created] if isinstance(created, str) else \
            [name for name in created if isinstance(name, str)] if isinstance(created, list) else []
        if "fold" in node:
            yield from ("key", "value")
        for curve in ("regression", "loess"):
            if curve in node:
                yield from (str(node.get(curve)), str(node.get("on")))
        for value in node.values():
            yield from _created_names(value, depth + 1)
