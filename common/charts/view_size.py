"""One drawn view's size and axis labels, decided from its mark, its encodings and its data, for a reader.

The numbers are the ones the templates were tuned with, now used for every chart: a view at least ``WIDTH``
wide, ``LINE_WIDTH`` for a measure over time, a step per category where their number varies (``BAR_STEP`` per
bar, ``ROW_STEP`` and ``TABLE_COLUMN_STEP`` for text tables), and every side at most ``MAX_WIDTH`` or
``MAX_HEIGHT`` whatever the data holds. Category labels on x stay upright while they fit (``UPRIGHT_LABEL_CHARS``
across ``WIDTH``, and each within its step), else they turn to ``LABEL_ANGLE`` and are cut at ``LABEL_LIMIT``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from common.charts.categories import ViewData

# Sizes for a reader, in CSS pixels (the PNG doubles them).
WIDTH, HEIGHT, LINE_WIDTH = 420, 300, 560
CELL_WIDTH, CELL_HEIGHT = 200, 200  # a view beside others: facet cells, repeated or concatenated views
BAR_STEP, ROW_STEP, TABLE_COLUMN_STEP = 28, 24, 140
OFFSET_STEP = 12  # per bar of a group (xOffset, yOffset): grouped bars widen their category
POINT_STEP = 3  # per point of a line past LINE_WIDTH, so a long series keeps its shape
MAX_WIDTH, MAX_HEIGHT = 1600, 1600
# Labels: what fits upright, where a turned or side label is cut (with an ellipsis), and below which step
# labels would overlap even turned: then the axis shows none, because drawing them costs ~10 ms each (measured
# with vl-convert: 1,000 cut labels take 12 s) and no one could read them; the tooltip still names each mark.
UPRIGHT_LABEL_CHARS = 48  # all labels together, across WIDTH
LABEL_CHAR_PX = 6.5  # average width of a character of Vega's 10 px label font
LABEL_ANGLE, LABEL_LIMIT, SIDE_LABEL_LIMIT = -45, 120, 160
MIN_TURNED_STEP, MIN_SIDE_STEP = 14, 12
_DISCRETE_TYPES = frozenset({"nominal", "ordinal"})
_DISCRETE_SCALES = frozenset({"band", "point", "ordinal"})
_SERIES_MARKS = frozenset({"line", "area", "trail"})
_FACET_CHANNELS = ("row", "column", "facet")


@dataclasses.dataclass
class ViewSize:
    """A view's size, and the category axes whose labels are settled once the final size is known."""

    width: float
    height: float
    x_axis: tuple[dict, int, list[str] | None] | None = None  # (channel definition, categories, labels)
    y_axis: tuple[dict, int] | None = None

    def scaled(self, factor: float) -> None:
        """Shrink both sides by ``factor`` (the chart's views together are over the render budget)."""
        self.width, self.height = max(self.width * factor, 1), max(self.height * factor, 1)

    def settle_labels(self) -> None:
        """Turn or cut the category labels so they do not overlap at the final size; drop those too dense to turn."""
        if self.x_axis is not None:
            _settle_x(*self.x_axis, step=self.width / self.x_axis[1], width=self.width)
        if self.y_axis is not None:
            definition, categories = self.y_axis
            axis = _axis(definition)
            if axis is not None and self.height / categories < MIN_SIDE_STEP:
                axis.update(labels=False, ticks=False)
            elif axis is not None:
                axis.setdefault("labelLimit", SIDE_LABEL_LIMIT)


def mark_type(node: dict) -> str | None:
    """The view's mark type, or None for a view without one."""
    mark = node.get("mark")
    kind = mark.get("type") if isinstance(mark, dict) else mark
    return kind if isinstance(kind, str) else None


def size_view(mark: str | None, encoding: dict, data: ViewData, *, beside: bool) -> ViewSize:
    """The size of a view that draws ``mark`` with ``encoding`` over ``data``; narrower when ``beside`` others."""
    x, y = _positional(encoding.get("x")), _positional(encoding.get("y"))
    size = ViewSize(width=CELL_WIDTH if beside else WIDTH, height=CELL_HEIGHT if beside else HEIGHT)
    if x is not None and _discrete(x):
        categories = data.count(x)
        step = TABLE_COLUMN_STEP if mark == "text" else _category_step(encoding.get("xOffset"), data)
        size.width = max(size.width, categories * step)
        size.x_axis = (x, categories, data.labels(x))
    elif x is not None and (_type(x) == "temporal" or mark in _SERIES_MARKS):
        size.width = max(CELL_WIDTH if beside else LINE_WIDTH, data.count(x) * POINT_STEP)
    if y is not None and _discrete(y):
        categories = data.count(y)
        step = ROW_STEP if mark == "text" else _category_step(encoding.get("yOffset"), data)
        size.height = categories * step
        size.y_axis = (y, categories)
    size.width, size.height = min(size.width, MAX_WIDTH), min(size.height, MAX_HEIGHT)
    return size


def faceted_beside(encoding: dict) -> bool:
    """Whether the encoding's facet channels put cells side by side (a column or a wrapped facet)."""
    return any(isinstance(encoding.get(channel), dict) for channel in ("column", "facet"))


def has_facet_channel(encoding: Any) -> bool:
    """Whether a unit view's encoding facets it (then it is a grid of cells, not one view)."""
    return isinstance(encoding, dict) and any(isinstance(encoding.get(c), dict) for c in _FACET_CHANNELS)


def _positional(definition: Any) -> dict | None:
    """A position channel that has a scale (a field, or an aggregate count), else None."""
    if isinstance(definition, dict) and ("field" in definition or definition.get("aggregate")):
        return definition
    return None


def _type(definition: dict) -> str:
    declared = definition.get("type")
    if isinstance(declared, str):
        return declared
    if definition.get("bin") or definition.get("aggregate"):
        return "quantitative"
    return "temporal" if definition.get("timeUnit") else "nominal"  # Vega-Lite's defaults


def _discrete(definition: dict) -> bool:
    scale = definition.get("scale")
    scale_type = scale.get("type") if isinstance(scale, dict) else None
    if isinstance(scale_type, str):
        return scale_type in _DISCRETE_SCALES
    return _type(definition) in _DISCRETE_TYPES


def _category_step(offset: Any, data: ViewData) -> float:
    """Pixels per category: a bar's, or a group's bars side by side."""
    if isinstance(offset, dict) and "field" in offset:
        return max(BAR_STEP, data.count(offset) * OFFSET_STEP)
    return BAR_STEP


def _axis(definition: dict) -> dict | None:
    """The channel's axis properties to settle (created if absent), or None when the axis is hidden."""
    if "axis" in definition and not isinstance(definition["axis"], dict):
        return None  # axis: null or false
    return definition.setdefault("axis", {})


def _settle_x(definition: dict, categories: int, labels: list[str] | None, *, step: float, width: float) -> None:
    axis = _axis(definition)
    if axis is None:
        return
    if step < MIN_TURNED_STEP:
        axis.update(labels=False, ticks=False)
        return
    if "labelExpr" in axis:
        return
    angle = axis.get("labelAngle")
    if isinstance(angle, int | float) and angle % 180 != 0:
        axis.setdefault("labelLimit", LABEL_LIMIT)  # the model turned them: keep its angle
        return
    if labels is not None:
        longest = max(map(len, labels), default=0)
        upright = (sum(map(len, labels)) <= UPRIGHT_LABEL_CHARS * width / WIDTH
                   and longest * LABEL_CHAR_PX <= step)
    else:  # labels the data does not show as they are (derived, binned, dated): assume ten characters
        upright = 10 * LABEL_CHAR_PX <= step
    if upright:
        axis["labelAngle"] = 0
        axis.setdefault("labelOverlap", True)  # upright labels' boxes are exact: only true overlaps are hidden
        return
    axis["labelAngle"] = LABEL_ANGLE  # Vega-Lite aligns turned labels to their tick by itself
    axis.setdefault("labelLimit", LABEL_LIMIT)
