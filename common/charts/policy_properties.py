"""Cost rules for properties that may appear anywhere in a spec (views, encodings, marks, axes, config).

Each rule bounds a knob that makes the renderer enumerate or allocate in proportion to a number the model
chose: expressions, bins, tick and colour counts, scale bins, sizes and steps, format widths, dash patterns,
imputed key lists. Rules are keyed by property name, so ``config`` (which sets the same properties for every
view) is covered with no rule of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from common.charts.expressions import check_expression, check_format
from common.charts.refusals import ChartTooExpensive

MAX_BINS = 50  # a histogram needs tens of bins; the binned axis enumerates every bin boundary
MAX_TICKS = 100  # axis ticks, colour-scheme counts: each is drawn or interpolated one by one
MAX_LIST = 100  # imputed key values, scale bin boundaries, pivot columns
MAX_LISTED_VALUES = 1000  # axis and legend values, oneOf predicates: each is drawn or compared one by one
MAX_PARAMS = 20
MAX_SIDE = 10_000  # px; the default axis draws a tick every ~40 px, so a side sets the tick count
MAX_STEP = 200  # px per category, per time step
MAX_SPACING = 500  # px of padding or spacing
MAX_TIME_STEP = 200
MAX_WINDOW_OFFSET = 1000  # rows before or after in a window or impute frame
SIDE_KEYS = frozenset({"width", "height", "continuousWidth", "continuousHeight", "discreteWidth",
                       "discreteHeight", "gradientLength"})
EXPRESSION_KEYS = frozenset({"expr", "calculate", "filter", "test", "signal", "update", "labelExpr"})
_LOGICAL = frozenset({"and", "or", "not"})
_AUTOSIZE = frozenset({"pad", "fit", "fit-x", "fit-y", "none"})
_BIN_PARAMETERS = frozenset({"maxbins", "nice", "anchor", "extent", "minstep", "binned"})
_TIME_UNIT_PARAMETERS = frozenset({"unit", "utc", "step", "maxbins", "binned"})


def check_properties(node: Any, where: str, *, in_bind: bool = False) -> None:
    """Walk ``node`` and apply the rule of every property that has one."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            check_properties(item, f"{where}[{index}]", in_bind=in_bind)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        path = f"{where}.{key}"
        rule = _RULES.get(key)
        if isinstance(value, str) and (key in EXPRESSION_KEYS or key.endswith("Expr")):
            check_expression(value, path)
        elif key in _LOGICAL:
            _check_logical(value, path)
        elif (key == "format" or key.endswith("Format")) and isinstance(value, str):
            check_format(value, path)
        elif key == "step" and not in_bind:
            _number(value, path, low=0, high=MAX_STEP)
        elif rule is not None:
            rule(value, path)
        check_properties(value, path, in_bind=in_bind or key == "bind")


def _number(value: Any, where: str, *, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ChartTooExpensive(f"{where} must be a number from {low} to {high}, not {_short(value)}")
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_logical(value: Any, where: str) -> None:
    """Strings inside and/or/not predicates are expressions too."""
    for index, item in enumerate(value if isinstance(value, list) else [value]):
        if isinstance(item, str):
            check_expression(item, f"{where}[{index}]" if isinstance(value, list) else where)


def _check_bin(value: Any, where: str) -> None:
    if value is None or isinstance(value, bool) or value == "binned":
        return
    if not isinstance(value, dict):
        raise ChartTooExpensive(f"{where} must be true, \"binned\" or an object such as {{\"maxbins\": 20}}")
    refused = sorted(set(value) - _BIN_PARAMETERS)
    if refused:
        raise ChartTooExpensive(f"{where}: {', '.join(refused)} may not be set (a small step over a wide range "
                                f"makes millions of bins); use \"maxbins\" (at most {MAX_BINS}), \"extent\", "
                                "\"nice\" or \"minstep\"")


def _check_time_unit(value: Any, where: str) -> None:
    if isinstance(value, dict):
        refused = sorted(set(value) - _TIME_UNIT_PARAMETERS)
        if refused:
            raise ChartTooExpensive(f"{where}: {', '.join(refused)} may not be set on a time unit")
        if "step" in value:
            _number(value["step"], f"{where}.step", low=1, high=MAX_TIME_STEP)
    elif not isinstance(value, str):
        raise ChartTooExpensive(f"{where} must be a time unit name such as \"yearmonth\"")


def _check_side(value: Any, where: str) -> None:
    if value == "container" or isinstance(value, int | float) and not isinstance(value, bool):
        if value != "container":
            _number(value, where, low=0, high=MAX_SIDE)
        return
    if isinstance(value, dict) and set(value) <= {"step", "for", "band"}:
        if "band" in value:
            _number(value["band"], f"{where}.band", low=0, high=100)
        return  # "step" has its own rule
    raise ChartTooExpensive(f"{where} must be a number of pixels (at most {MAX_SIDE}), \"container\" or "
                            f"{{\"step\": n}}, not {_short(value)}")


def check_frame(frame: Any, where: str) -> tuple[int | None, int | None]:
    """Return a window or impute frame's bounds; refuse one that is not [start, end] within the offset cap."""
    if not isinstance(frame, list) or len(frame) != 2 or not all(
            bound is None or isinstance(bound, int) and not isinstance(bound, bool) and
            abs(bound) <= MAX_WINDOW_OFFSET for bound in frame):
        raise ChartTooExpensive(f"{where} must be [start, end], each null or a whole number of rows from "
                                f"-{MAX_WINDOW_OFFSET} to {MAX_WINDOW_OFFSET}")
    return frame[0], frame[1]


def _check_listed_values(value: Any, where: str) -> None:
    if isinstance(value, list) and len(value) > MAX_LISTED_VALUES:
        raise ChartTooExpensive(f"{where} lists {len(value)} values; at most {MAX_LISTED_VALUES}")


def _check_count(value: Any, where: str) -> None:
    _number(value, where, low=0, high=MAX_TICKS)


def _check_short_list(value: Any, where: str) -> None:
    if not isinstance(value, list) or len(value) > MAX_LIST:
        raise ChartTooExpensive(f"{where} must be a list of at most {MAX_LIST} values (ranges such as "
                                "{\"start\", \"stop\", \"step\"} enumerate without bound)")


def _check_spacing(value: Any, where: str) -> None:
    for key, item in value.items() if isinstance(value, dict) else [("", value)]:
        _number(item, f"{where}.{key}" if key else where, low=0, high=MAX_SPACING)


def _check_autosize(value: Any, where: str) -> None:
    kind = value.get("type", "pad") if isinstance(value, dict) else value
    extra = set(value) - {"type", "contains", "resize"} if isinstance(value, dict) else set()
    if kind not in _AUTOSIZE or extra:
        raise ChartTooExpensive(f"{where} must be one of {sorted(_AUTOSIZE)} (or an object with type, contains "
                                "and resize)")


def _check_stroke_dash(value: Any, where: str) -> None:
    if not isinstance(value, list):
        return  # a field or a condition: its values come from the encoding's scale
    numbers = [_number(item, f"{where}[{i}]", low=0, high=MAX_SIDE) for i, item in enumerate(value[:17])]
    if len(value) > 16 or numbers and sum(numbers) < 1:
        raise ChartTooExpensive(f"{where}: a dash pattern has at most 16 lengths adding up to at least 1 px "
                                "(tiny dashes make millions of segments to rasterise)")


def _check_params(value: Any, where: str) -> None:
    if isinstance(value, list) and len(value) > MAX_PARAMS:
        raise ChartTooExpensive(f"{where}: at most {MAX_PARAMS} params are allowed")


def _check_format_type(value: Any, where: str) -> None:
    if value not in ("number", "time", "utc"):
        raise ChartTooExpensive(f"{where} must be \"number\", \"time\" or \"utc\"")


def _check_tick_count(value: Any, where: str) -> None:
    if isinstance(value, dict):
        raise ChartTooExpensive(f"{where} must be a number (at most {MAX_TICKS}): a time interval such as "
                                "{\"interval\": \"millisecond\"} can make millions of ticks")
    _number(value, where, low=0, high=MAX_TICKS)


_RULES: dict[str, Callable[[Any, str], None]] = {
    "bin": _check_bin, "timeUnit": _check_time_unit, "maxbins": lambda v, w: _number(v, w, low=1, high=MAX_BINS),
    "tickCount": _check_tick_count, "count": _check_count, "bins": _check_short_list, "keyvals": _check_short_list,
    "padding": _check_spacing, "spacing": _check_spacing, "autosize": _check_autosize,
    "strokeDash": _check_stroke_dash, "params": _check_params, "formatType": _check_format_type,
    "frame": check_frame, "values": _check_listed_values, "oneOf": _check_listed_values,
    **{key: _check_side for key in SIDE_KEYS},
}
