"""Check the visualizer's Vega-Lite spec as the untrusted model output it is, then bind the result rows.

The model never supplies data: its spec names the placeholder ``{"name": "result"}`` and the server puts the
rows in. What the check refuses, and why:
- any data but the placeholder: ``url`` data is read by the renderer (files, network) and by the browser;
  model-made ``values`` or ``datasets`` would show numbers the query never produced;
- ``href`` and ``url`` anywhere: chart HTML runs unsandboxed in the app's origin (a ``javascript:`` link runs
  there on click), and an image ``url`` makes the server or the browser fetch it;
- ``usermeta``: vega-embed takes embed options (a loader, among others) from it;
- expressions that name browser globals or the prototype chain: Vega's expression language is sandboxed,
  but that sandbox has had escapes, so this is defence in depth;
- fields that are not result columns. Every message says where and what, because it goes back to the
  visualizer, which gets one more try.

Then ``policy.check_cost`` bounds what the spec would cost to draw (``CHART_TOO_EXPENSIVE``), with the rows,
and ``sizing.size_chart`` sizes it for a reader (any size the spec names is replaced).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

from common.charts.policy import check_cost
from common.charts.refusals import ChartSpecError, ChartTooExpensive
from common.charts.sizing import size_chart
from common.config import SETTINGS

__all__ = ["CANONICAL_SCHEMA", "KINDS", "MAX_SPEC_BYTES", "ChartSpecError", "ChartTooExpensive",
           "bind_and_validate", "chart_kind", "validate"]

CANONICAL_SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
PLACEHOLDER = {"name": "result"}
MAX_SPEC_BYTES = 100 * 1024
MAX_DEPTH = 64
KINDS = ("bar", "line", "area", "point", "table", "other")

_SCHEMA = re.compile(r"^https?://vega\.github\.io/schema/vega-lite/v5(\.\d+){0,2}\.json$")
_COMPOSITIONS = ("layer", "concat", "hconcat", "vconcat")
_OPERATORS = ("facet", "repeat")
_MARKS = frozenset({"arc", "area", "bar", "boxplot", "circle", "errorband", "errorbar", "geoshape", "image",
                    "line", "point", "rect", "rule", "square", "text", "tick", "trail"})
_VEGA_ONLY = ("signals", "marks", "scales", "axes", "legends")
_REFUSED_KEYS = {
    "datasets": "'datasets' is not allowed: the data is the query result, named {\"name\": \"result\"}",
    "usermeta": "'usermeta' is not allowed",
    "href": "'href' is not allowed: a chart may not link anywhere",
    "url": "'url' is not allowed: a chart may not load anything",
    "customFormatTypes": "'customFormatTypes' is not allowed",
}
_EXPRESSION_KEYS = frozenset({"expr", "calculate", "filter", "test", "signal", "update", "labelExpr"})
_LOGICAL_KEYS = frozenset({"and", "or", "not"})  # predicates whose members may be expression strings
# Data the renderer would load or generate: refused for its cost (and a URL for where it reads from).
_COSTLY_DATA = ("url", "sequence", "sphere", "graticule")
DEFAULT_MAX_PIXELS: int = next(setting.default for setting in SETTINGS if setting.name == "chart_max_pixels")
_FIELD_LIST_KEYS = frozenset({"groupby", "fields", "fold", "flatten"})
# Output fields of transforms that do not name them with "as".
_DEFAULT_OUTPUTS = {"fold": ("key", "value"), "density": ("value", "density"), "quantile": ("prob", "value")}
_PROTOTYPE_NAMES = frozenset({"constructor", "prototype", "__proto__", "__definegetter__", "__lookupgetter__"})
_DENIED_NAMES = _PROTOTYPE_NAMES | frozenset({
    "href", "window", "document", "location", "fetch", "xmlhttprequest", "import", "eval", "function",
    "globalthis", "opener", "cookie", "localstorage", "sessionstorage", "indexeddb", "postmessage",
    "settimeout", "setinterval", "websocket", "navigator"})
_IDENTIFIER = re.compile(r"[A-Za-z_$][\w$]*")
# datum.name / datum["name"] read a data field: the name is data, not code, unless it climbs the prototype chain.
_DATUM_ACCESS = re.compile(r"""\bdatum\s*(?:\.\s*([A-Za-z_$][\w$]*)|\[\s*(?:"([^"\\]*)"|'([^'\\]*)')\s*\])""")
_MAX_LISTED_COLUMNS = 50


def bind_and_validate(spec: object, columns: list[dict], rows: list[dict], *, max_rows: int,
                      max_pixels: int = DEFAULT_MAX_PIXELS) -> dict:
    """Return a checked, sized copy of ``spec`` with field names spelled as the columns and the rows bound as data.

    Raises ``ChartSpecError`` for an unusable spec, ``ChartTooExpensive`` for one that would cost too much.
    """
    if max_rows < 0:
        raise ValueError("max_rows must be >= 0")
    names = [column["name"] for column in columns]
    checked = validate(spec, names)
    bound = [_finite(row) for row in rows[:max_rows]]
    # Sized first: the server replaces every size the model gave, so a model's oversized width is no reason to
    # refuse the chart (and pay for another visualizer call); the cost check then sees what will be drawn.
    sized = size_chart(checked, names, bound, max_pixels=max_pixels)
    check_cost(sized, names, bound, max_pixels=max_pixels)
    sized["data"] = {"values": bound}
    return sized


def _finite(row: dict) -> dict:
    """The row with NaN and infinities (a SQL division by zero) as nulls: JSON, and so a chart page, has neither."""
    return {key: None if isinstance(value, float) and not math.isfinite(value) else value
            for key, value in row.items()}


def validate(spec: object, column_names: list[str]) -> dict:
    """Return a checked copy of ``spec`` whose data is the placeholder; raise ``ChartSpecError`` if unusable."""
    if not isinstance(spec, dict):
        raise ChartSpecError(f"the spec must be a JSON object, not {type(spec).__name__}")
    _check_size(spec)
    _check_top_level(spec)
    fields = _Fields(column_names, set(_derived_names(spec, 0)))
    checked = _Checker(fields).view(spec, "spec", 0)
    checked.pop("$schema", None)
    return {"$schema": CANONICAL_SCHEMA, **checked, "data": dict(PLACEHOLDER)}


def chart_kind(spec: dict) -> str:
    """Say what kind of chart ``spec`` draws, from its marks: bar, line, area, point, table or other."""
    marks = list(_marks(spec, 0))
    primary = next((mark for mark in marks if mark not in ("text", "rule")), marks[0] if marks else None)
    return {"bar": "bar", "line": "line", "trail": "line", "area": "area", "point": "point", "circle": "point",
            "square": "point", "text": "table"}.get(primary or "", "other")


def _check_size(spec: dict) -> None:
    try:
        size = len(json.dumps(spec, allow_nan=False).encode("utf-8"))
    except (TypeError, ValueError, RecursionError):
        raise ChartSpecError("the spec is not plain JSON (or is nested too deeply)") from None
    if size > MAX_SPEC_BYTES:
        raise ChartSpecError(f"the spec is {size} bytes; at most {MAX_SPEC_BYTES} are allowed (it must not "
                             "carry data: the server binds the rows)")


def _check_top_level(spec: dict) -> None:
    schema = spec.get("$schema")
    if schema is not None and not (isinstance(schema, str) and _SCHEMA.match(schema)):
        raise ChartSpecError(f"$schema {schema!r} is not Vega-Lite v5: use {CANONICAL_SCHEMA!r}")
    vega_keys = [key for key in _VEGA_ONLY if key in spec]
    if vega_keys:
        raise ChartSpecError(f"this looks like a Vega spec ({', '.join(vega_keys)}): write Vega-Lite v5")
    if "mark" not in spec and not any(key in spec for key in _COMPOSITIONS + _OPERATORS):
        raise ChartSpecError("the spec needs a 'mark' (or a 'layer', 'concat', 'hconcat', 'vconcat', 'facet' "
                             "or 'repeat')")


def _derived_names(node: Any, depth: int) -> Iterator[str]:
    """Yield every field name a transform creates, so encodings may refer to it."""
    if depth > MAX_DEPTH:
        raise ChartSpecError(f"the spec is nested more than {MAX_DEPTH} levels deep")
    if isinstance(node, list):
        for item in node:
            yield from _derived_names(item, depth + 1)
    elif isinstance(node, dict):
        created = node.get("as")
        if isinstance(created, str):
            yield created
        elif isinstance(created, list):
            yield from (name for name in created if isinstance(name, str))
        elif created is None:
            for transform, outputs in _DEFAULT_OUTPUTS.items():
                if transform in node:
                    yield from outputs
        for value in node.values():
            yield from _derived_names(value, depth + 1)


def _marks(node: Any, depth: int) -> Iterator[str]:
    if not isinstance(node, dict) or depth > MAX_DEPTH:
        return
    mark = node.get("mark")
    mark_type = mark.get("type") if isinstance(mark, dict) else mark
    if isinstance(mark_type, str):
        yield mark_type
    for key in _COMPOSITIONS:
        children = node.get(key)
        for child in children if isinstance(children, list) else []:
            yield from _marks(child, depth + 1)
    yield from _marks(node.get("spec"), depth + 1)


class _Fields:
    """The names a spec may use as fields: result columns (any case) and names its transforms create."""

    def __init__(self, columns: list[str], derived: set[str]):
        self.columns = columns
        self.derived = derived
        self.by_folded: dict[str, set[str]] = {}
        for name in [*columns, *derived]:
            self.by_folded.setdefault(name.casefold(), set()).add(name)

    def resolve(self, raw: str, where: str) -> str:
        """Return the field as Vega-Lite must spell it, or raise naming the field and the columns."""
        name = _unescape(raw)
        if name in self.derived or raw == "*":
            return raw
        if name in self.columns:
            return _escape(name)
        candidates = self.by_folded.get(name.casefold(), set())
        if len(candidates) == 1:
            match = next(iter(candidates))
            return _escape(match) if match in self.columns else match
        if candidates:
            raise ChartSpecError(f"{where}: field {raw!r} is ambiguous; use one of {sorted(candidates)} exactly")
        listed = ", ".join(repr(column) for column in self.columns[:_MAX_LISTED_COLUMNS])
        hidden = len(self.columns) - _MAX_LISTED_COLUMNS
        more = f" and {hidden} more" if hidden > 0 else ""
        raise ChartSpecError(f"{where}: unknown field {raw!r}; the result columns are {listed}{more}",
                             details={"field": raw, "columns": self.columns[:_MAX_LISTED_COLUMNS]})


class _Checker:
    """Walk a spec, refusing what is unsafe and rewriting field names; returns the checked structure."""

    def __init__(self, fields: _Fields):
        self.fields = fields

    def view(self, node: Any, where: str, depth: int) -> dict:
        """Check a view spec (the top level, a layer or concat member, a facet or repeat ``spec``)."""
        if not isinstance(node, dict):
            raise ChartSpecError(f"{where} must be an object")
        if "data" in node and node["data"] != PLACEHOLDER:
            costly = isinstance(node["data"], dict) and any(key in node["data"] for key in _COSTLY_DATA)
            raise (ChartTooExpensive if costly else ChartSpecError)(
                f"{where}.data must be exactly {{\"name\": \"result\"}}: the server binds the query result; "
                "other data (url, generators such as sequence, values, datasets) is not allowed")
        mark = node.get("mark")
        mark_type = mark.get("type") if isinstance(mark, dict) else mark
        if "mark" in node and mark_type not in _MARKS:
            raise ChartSpecError(f"{where}.mark {mark_type!r} is not a Vega-Lite mark: use one of {sorted(_MARKS)}")
        # Nested views inherit the top-level data, which is where the rows are bound.
        node = {key: value for key, value in node.items() if key != "data"}
        checked = self.value(node, where, depth, nested_views=True)
        if "repeat" in checked:
            checked["repeat"] = self.repeated_fields(checked["repeat"], f"{where}.repeat")
        return checked

    def value(self, node: Any, where: str, depth: int, *, nested_views: bool = False) -> Any:
        if depth > MAX_DEPTH:
            raise ChartSpecError(f"the spec is nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, list):
            return [self.value(item, f"{where}[{index}]", depth + 1) for index, item in enumerate(node)]
        if not isinstance(node, dict):
            return node
        checked = {}
        for key, value in node.items():
            path = f"{where}.{key}"
            if key in _REFUSED_KEYS:
                raise ChartSpecError(f"{path}: {_REFUSED_KEYS[key]}")
            if key == "data":
                raise ChartSpecError(f"{path}: only views may name data, and only {{\"name\": \"result\"}}")
            if nested_views and key in _COMPOSITIONS and isinstance(value, list):
                checked[key] = [self.view(item, f"{path}[{index}]", depth + 1) for index, item in enumerate(value)]
            elif nested_views and key == "spec":
                checked[key] = self.view(value, path, depth + 1)
            elif key == "field" and isinstance(value, str):
                checked[key] = self.fields.resolve(value, path)
            elif key in _FIELD_LIST_KEYS and isinstance(value, list) and all(isinstance(v, str) for v in value):
                checked[key] = [self.fields.resolve(item, f"{path}[{i}]") for i, item in enumerate(value)]
            elif (key in _EXPRESSION_KEYS or key.endswith("Expr")) and isinstance(value, str):
                _check_expression(value, path)
                checked[key] = value
            elif key in _LOGICAL_KEYS and isinstance(value, str | list):
                for item in value if isinstance(value, list) else [value]:
                    if isinstance(item, str):
                        _check_expression(item, path)
                checked[key] = self.value(value, path, depth + 1)
            else:
                checked[key] = self.value(value, path, depth + 1)
        return checked

    def repeated_fields(self, repeat: Any, where: str) -> Any:
        """Resolve the field names a ``repeat`` operator iterates over."""
        if isinstance(repeat, list):
            return [self.fields.resolve(item, f"{where}[{i}]") if isinstance(item, str) else item
                    for i, item in enumerate(repeat)]
        if isinstance(repeat, dict):
            return {key: self.repeated_fields(value, f"{where}.{key}") for key, value in repeat.items()}
        return repeat


def _check_expression(text: str, where: str) -> None:
    for match in _DATUM_ACCESS.finditer(text):
        name = next(group for group in match.groups() if group is not None)
        if name.casefold() in _PROTOTYPE_NAMES:
            raise ChartSpecError(f"{where}: the expression may not use {name!r}")
    for token in _IDENTIFIER.findall(_DATUM_ACCESS.sub(" ", text)):
        if token.casefold() in _DENIED_NAMES:
            raise ChartSpecError(f"{where}: the expression may not use {token!r} (refer to a field as datum.<name>)")


def _escape(name: str) -> str:
    """Spell a column name as a Vega-Lite field: a bare ``.`` or ``[`` would mean nested access."""
    return re.sub(r"([\\.\[\]])", r"\\\1", name)


def _unescape(field: str) -> str:
    return re.sub(r"\\(.)", r"\1", field)
