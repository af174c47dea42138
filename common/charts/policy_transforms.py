"""Cost rules for a view's transforms: an allowlist of transforms and their parameters, and an upper bound on
the rows each transform leaves (``fold`` multiplies them, ``aggregate`` and ``sample`` reduce them).

Only what a chart of a result table needs is allowed. Refused outright: ``flatten`` (it turns arrays into rows,
and ``sequence()`` makes arrays of any length), ``density`` and ``quantile`` (a curve sampled per group: use a
``bin`` and a count), ``extent``, ``sequence`` and any transform not listed. Bounded: ``window`` frames,
``fold`` fields, ``pivot`` columns, ``impute`` keys, ``regression`` order. Row counts use the bound rows:
a result column's number of distinct values is counted exactly, any other field is bounded by the rows.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

from common.charts.policy_properties import MAX_LIST, check_frame
from common.charts.refusals import ChartTooExpensive

MAX_TRANSFORMS = 30
MAX_FOLD_FIELDS = 50
MAX_SORTED_FRAME = 100  # rows in a frame whose values a median or quantile sorts for every row
MAX_REGRESSION_ORDER = 6
REGRESSION_POINTS = 100  # at most this many curve points per group, however the curve is sampled
PARAMETERS = {
    "filter": {"filter"}, "calculate": {"calculate", "as"}, "aggregate": {"aggregate", "groupby"},
    "joinaggregate": {"joinaggregate", "groupby"}, "window": {"window", "frame", "ignorePeers", "groupby", "sort"},
    "bin": {"bin", "field", "as"}, "timeUnit": {"timeUnit", "field", "as"}, "fold": {"fold", "as"},
    "stack": {"stack", "groupby", "offset", "sort", "as"}, "sample": {"sample"},
    "pivot": {"pivot", "value", "groupby", "limit", "op"}, "lookup": {"lookup", "from", "as", "default"},
    "regression": {"regression", "on", "groupby", "method", "order", "extent", "params", "as"},
    "loess": {"loess", "on", "groupby", "bandwidth", "as"},
    "impute": {"impute", "key", "keyvals", "frame", "method", "value", "groupby"},
}
REFUSED = {
    "flatten": "it turns every array into rows (with sequence() into millions of rows)",
    "density": "it samples a curve for every group: show a distribution with a \"bin\" and a count",
    "quantile": "it samples quantiles for every group: use an aggregate (median, q1, q3)",
    "extent": "a chart of a result table does not need it",
    "sequence": "it generates rows",
}
AGGREGATE_OPS = frozenset({"count", "valid", "values", "missing", "distinct", "sum", "product", "mean", "average",
                           "variance", "variancep", "stdev", "stdevp", "stderr", "median", "q1", "q3", "ci0", "ci1",
                           "min", "max", "argmin", "argmax"})
_RANKING_OPS = frozenset({"row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead",
                          "first_value", "last_value", "nth_value"})
# These keep the frame's values and sort or scan them for every row: only over a short frame.
_SORTED_OPS = frozenset({"median", "q1", "q3", "distinct", "argmin", "argmax"})
# "values" copies the frame into every row, ci0/ci1 bootstrap 1000 samples of it for every row.
_WINDOW_OPS = (AGGREGATE_OPS - {"values", "ci0", "ci1"}) | _RANKING_OPS
_REGRESSION_METHODS = ("linear", "log", "exp", "pow", "quad", "poly")
_IMPUTE_METHODS = ("value", "mean", "median", "max", "min")


class Rows:
    """The bound rows, as far as the cost of a chart depends on them: how many, and distinct values per column."""

    def __init__(self, columns: Sequence[str], rows: Sequence[dict], created: set[str]):
        self.count = len(rows)
        self._columns, self._rows, self._created = set(columns), rows, created
        self._distinct: dict[str, int] = {}

    def distinct(self, field: Any, bound: int) -> int:
        """Distinct values of ``field``: exact for a result column no transform redefines, else ``bound``."""
        name = re.sub(r"\\(.)", r"\1", field) if isinstance(field, str) else None
        if name is None or name not in self._columns or field in self._created or name in self._created:
            return bound
        if name not in self._distinct:
            self._distinct[name] = len({_hashable(row.get(name)) for row in self._rows})
        return min(self._distinct[name], bound)

    def combinations(self, fields: Sequence[Any], bound: int) -> int:
        """Upper bound of the distinct combinations of ``fields``."""
        return math.prod(self.distinct(field, bound) for field in fields)


def apply_transforms(transforms: Any, where: str, tuples: int, rows: Rows) -> int:
    """Check a view's ``transform`` list; return an upper bound of the rows it leaves."""
    if not isinstance(transforms, list) or len(transforms) > MAX_TRANSFORMS:
        raise ChartTooExpensive(f"{where} must be a list of at most {MAX_TRANSFORMS} transforms")
    for index, transform in enumerate(transforms):
        path = f"{where}[{index}]"
        kind = next((key for key in transform if key in PARAMETERS or key in REFUSED), None) \
            if isinstance(transform, dict) else None
        if kind in REFUSED:
            raise ChartTooExpensive(f"{path}: the {kind!r} transform is not allowed: {REFUSED[kind]}")
        if kind is None:
            raise ChartTooExpensive(f"{path}: not an allowed transform; use one of {', '.join(sorted(PARAMETERS))}")
        unknown = sorted(set(transform) - PARAMETERS[kind])
        if unknown:
            raise ChartTooExpensive(f"{path}: {', '.join(unknown)} is not a parameter of the {kind!r} transform "
                                    f"here (allowed: {', '.join(sorted(PARAMETERS[kind]))})")
        tuples = _HANDLERS.get(kind, _same)(transform, path, tuples, rows)
    return tuples


def _same(transform: dict, where: str, tuples: int, rows: Rows) -> int:
    return tuples


def _groups(transform: dict, tuples: int, rows: Rows) -> int:
    groupby = transform.get("groupby") or []
    return rows.combinations(groupby if isinstance(groupby, list) else [groupby], tuples)


def _aggregate(transform: dict, where: str, tuples: int, rows: Rows) -> int:
    _check_ops(transform.get("aggregate"), f"{where}.aggregate", AGGREGATE_OPS)
    return min(tuples, _groups(transform, tuples, rows))


def _joinaggregate(transform: dict, where: str, tuples: int, rows: Rows) -> int:
    _check_ops(transform.get("joinaggregate"), f"{where}.joinaggregate", AGGREGATE_OPS)
    return tuples


def _window(transform: dict, where: str, tuples: int, rows: Rows) -> int:
    ops = _check_ops(transform.get("window"), f"{where}.window", _WINDOW_OPS)
    start, end = check_frame(transform.get("frame", [None, 0]), f"{where}.frame")
    sorted_ops = sorted(ops & _SORTED_OPS)
    if sorted_ops and (start is None or end is None or end - start > MAX_SORTED_FRAME):
        raise ChartTooExpensive(f"{where}: {', '.join(sorted_ops)} in a window needs a frame of at most "
                                f"{MAX_SORTED_FRAME} rows, e.g. \"frame\": [-6, 0]")
    return tuples


def _fold(transform: dict, where: str, tuples: int, rows: Rows) -> int:
    fields = transform.get("fold")
    if not isinstance(fields, list) or not fields or len(fields) > MAX_FOLD_FIELDS:
        raise ChartTooExpensive(f"{where}.fold must list 1 to {MAX_FOLD_FIELDS} fields")
    if len(set(map(str, fields))) != len(fields):
        raise ChartTooExpensive(f"{where}.fold lists a field twice")
    return tuples * len(fields)


def _sample(transform: dict, where: str, tuples: int, rows: Rows) -> int:
    size = transform.get("sample")
    if isinstance(size, bool) or not isinstance(size, int | float) or size < 1:
        raise ChartTooExpensive(f"{where}.sample must be a number of rows")
    return min(tuples, int(size))


def _pivot(transform: dict, where: str, tuples: int, rows: Rows) -> int:
    limit = transform.get("limit")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST:
        raise ChartTooExpensive(f"{where}.limit must be set, from 1 to {MAX_LIST}: each distinct value becomes "
                                "a field of every row")
    _check_ops([{"op": transform.get("op", "sum")}], f"{where}.op", AGGREGATE_OPS)
    return min(tuples, _groups(transform, tuples, rows))


def _regression(transform: dict, where: str, tuples: int, rows: Rows) -> int:
    if transform.get("method", "linear") not in _REGRESSION_METHODS:
        raise ChartTooExpensive(f"{where}.method must be one of {', '.join(_REGRESSION_METHODS)}")
    order = transform.get("order", 3)
    if isinstance(order, bool) or not isinstance(order, int) or not 1 <= order <= MAX_REGRESSION_ORDER:
        raise ChartTooExpensive(f"{where}.order must be a whole number from 1 to {MAX_REGRESSION_ORDER}")
    _extent(transform.get("extent"), f"{where}.extent")
    return min(tuples, _groups(transform, tuples, rows)) * REGRESSION_POINTS


def _loess(transform: dict, where: str, tuples: int, rows: Rows) -> int:
    bandwidth = transform.get("bandwidth", 0.3)
    if isinstance(bandwidth, bool) or not isinstance(bandwidth, int | float) or not 0 < bandwidth <= 1:
        raise ChartTooExpensive(f"{where}.bandwidth must be a number above 0 and at most 1")
    return tuples


def _lookup(transform: dict, where: str, tuples: int, rows: Rows) -> int:
    source = transform.get("from")
    if not isinstance(source, dict) or "param" not in source:
        raise ChartTooExpensive(f"{where}.from may only name a param (a selection): there is no other data")
    return tuples


def _impute(transform: dict, where: str, tuples: int, rows: Rows) -> int:
    if transform.get("method", "value") not in _IMPUTE_METHODS:
        raise ChartTooExpensive(f"{where}.method must be one of {', '.join(_IMPUTE_METHODS)}")
    keyvals = transform.get("keyvals") or []  # its shape is checked with the other properties
    keys = rows.distinct(transform.get("key"), tuples) + (len(keyvals) if isinstance(keyvals, list) else 0)
    return max(tuples, keys * _groups(transform, tuples, rows))


def _check_ops(definitions: Any, where: str, allowed: frozenset[str]) -> set[str]:
    if not isinstance(definitions, list) or not all(isinstance(item, dict) for item in definitions):
        raise ChartTooExpensive(f"{where} must be a list of {{\"op\", \"field\", \"as\"}} objects")
    ops = {item.get("op") for item in definitions}
    refused = sorted(str(op) for op in ops - allowed)
    if refused:
        raise ChartTooExpensive(f"{where}: op {', '.join(refused)} is not allowed here; use one of "
                                f"{', '.join(sorted(allowed))}")
    return {str(op) for op in ops}


def _extent(extent: Any, where: str) -> None:
    if extent is not None and not (isinstance(extent, list) and len(extent) == 2 and all(
            isinstance(bound, int | float) and not isinstance(bound, bool) for bound in extent)):
        raise ChartTooExpensive(f"{where} must be [min, max]")


def _hashable(value: Any) -> Any:
    try:
        hash(value)
        return value
    except TypeError:
        return json.dumps(value, sort_keys=True, default=str)


_HANDLERS: dict[str, Callable[[dict, str, int, Rows], int]] = {
    "aggregate": _aggregate, "joinaggregate": _joinaggregate, "window": _window, "fold": _fold,
    "sample": _sample, "pivot": _pivot, "regression": _regression, "loess": _loess, "lookup": _lookup,
    "impute": _impute,
}
