"""Charts that need no model: a Vega-Lite spec from a template when the visual hint and the result's shape
make the chart obvious.

Obvious means a hint of bar or line with one dimension and one measure (bars over categories, a line over
dates), or a hint of table with a few columns. Anything else (several measures, two dimensions, "auto": the
planner saw no standard chart that fits) returns None and goes to the visualizer. A template spec is
checked, bound and sized like a model's (``bind_and_validate``), so it meets the same policy and gets the same
sizes and label angles (``sizing``); it saves a model call and its round, which is what a user waits for.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from common.charts.spec import CANONICAL_SCHEMA, PLACEHOLDER

MAX_BAR_CATEGORIES = 40  # more than this is not an obvious bar chart
MAX_TABLE_COLUMNS = 6
MAX_TABLE_ROWS = 30
HORIZONTAL_FROM = 8  # categories; long labels read better on the side
LONG_LABEL = 12

_NUMERIC = re.compile(r"INT|DOUBLE|FLOAT|DECIMAL|NUMERIC|REAL", re.IGNORECASE)
_TEMPORAL = re.compile(r"^(DATE|TIMESTAMP|TIME)", re.IGNORECASE)


def template_spec(hint: str, columns: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]], *,
                  title: str) -> dict[str, Any] | None:
    """The spec for an obvious chart of this result, or None when a model should design it."""
    if hint == "table":
        return _table(columns, rows, title) if 0 < len(columns) <= MAX_TABLE_COLUMNS else None
    dimensions = [column for column in columns if not _NUMERIC.search(column["dtype"])]
    measures = [column for column in columns if _NUMERIC.search(column["dtype"])]
    if len(dimensions) != 1 or len(measures) != 1 or not rows:
        return None
    dimension, measure = dimensions[0], measures[0]
    temporal = bool(_TEMPORAL.match(dimension["dtype"]))
    if hint == "line":
        return _line(dimension["name"], measure["name"], title) if temporal else None
    if hint == "bar" and len(rows) <= MAX_BAR_CATEGORIES:
        return _bar(dimension["name"], measure["name"], rows, title, temporal=temporal)
    return None  # "auto": the planner saw no standard chart that fits, so a model designs one


def axis_title(column: str) -> str:
    """A column name as an axis title: ``revenue_eur`` -> ``Revenue (EUR)``, ``share_pct`` -> ``Share (%)``."""
    words = [word for word in re.split(r"[_\s]+", column.strip()) if word]
    if not words:
        return column
    unit = None
    if len(words) > 1 and words[-1].lower() in _UNITS:
        unit = _UNITS[words.pop().lower()]
    text = " ".join(words)
    text = text[:1].upper() + text[1:]
    return f"{text} ({unit})" if unit else text


_UNITS = {"pct": "%", "percent": "%", "usd": "USD", "eur": "EUR", "gbp": "GBP", "jpy": "JPY", "chf": "CHF",
          "millions": "millions", "thousands": "thousands", "billions": "billions", "days": "days",
          "hours": "hours", "minutes": "minutes", "kg": "kg", "km": "km"}


def _number_format(column: str) -> str:
    return ".1f" if column.lower().endswith(("_pct", "_percent")) else ",.2~f"


def _bar(dimension: str, measure: str, rows: Sequence[dict[str, Any]], title: str, *,
         temporal: bool) -> dict[str, Any]:
    labels = [str(row.get(dimension, "")) for row in rows]
    horizontal = not temporal and (len(rows) >= HORIZONTAL_FROM or max(map(len, labels), default=0) > LONG_LABEL)
    category = {"field": dimension, "type": "ordinal" if temporal else "nominal", "title": axis_title(dimension),
                "sort": None if temporal else ("-x" if horizontal else "-y")}
    value = {"field": measure, "type": "quantitative", "title": axis_title(measure),
             "axis": {"format": _number_format(measure)}}
    encoding = {"y": category, "x": value} if horizontal else {"x": category, "y": value}
    return _spec(title, {"mark": {"type": "bar", "tooltip": True}, "encoding": {
        **encoding, "tooltip": _tooltip(dimension, "ordinal" if temporal else "nominal", measure)}})


def _line(dimension: str, measure: str, title: str) -> dict[str, Any]:
    return _spec(title, {"mark": {"type": "line", "point": True}, "encoding": {
        "x": {"field": dimension, "type": "temporal", "title": axis_title(dimension)},
        "y": {"field": measure, "type": "quantitative", "title": axis_title(measure),
              "axis": {"format": _number_format(measure)}},
        "tooltip": _tooltip(dimension, "temporal", measure)}})


def _table(columns: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]], title: str) -> dict[str, Any]:
    names = [column["name"] for column in columns]
    return _spec(title, {
        # A field predicate, not an expression, so the sizing knows the table has at most that many rows.
        "transform": [{"window": [{"op": "row_number", "as": "row"}]},
                      {"filter": {"field": "row", "lte": MAX_TABLE_ROWS}},
                      {"fold": names}],
        "mark": {"type": "text"},
        "encoding": {"y": {"field": "row", "type": "ordinal", "axis": None},
                     "x": {"field": "key", "type": "nominal", "sort": names, "title": None,
                           "axis": {"orient": "top", "labelAngle": 0, "domain": False, "ticks": False}},
                     "text": {"field": "value"}}})


def _tooltip(dimension: str, kind: str, measure: str) -> list[dict[str, Any]]:
    return [{"field": dimension, "type": kind, "title": axis_title(dimension)},
            {"field": measure, "type": "quantitative", "title": axis_title(measure),
             "format": _number_format(measure)}]


def _spec(title: str, view: dict[str, Any]) -> dict[str, Any]:
    return {"$schema": CANONICAL_SCHEMA, "data": dict(PLACEHOLDER), "title": {"text": title[:200] or "Result"},
            **view}
