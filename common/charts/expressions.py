"""Vega expressions in a model-written spec, checked for cost before anything evaluates them.

An expression runs once per row (``calculate``, ``filter``) or per label, in the renderer and in the user's
browser. Vega's language has no loops, so an expression can only be expensive through a function that builds
something big from a small argument: ``sequence(0, 1e9)``, ``pad(s, 1e9)``, ``timeSequence``, ``split``, a
regular expression that backtracks, a number format with a huge width. So every call must name a function of
the allowlist below (arithmetic, comparisons, math, dates, short string and array helpers, formats), a format
specifier must be a short string literal, and regular expressions (``regexp()``, ``/literals/``) are refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from common.charts.refusals import ChartTooExpensive

MAX_EXPRESSION_CHARS = 1000
MAX_FORMAT_CHARS = 100
ALLOWED_FUNCTIONS = frozenset({
    # types and control
    "isArray", "isBoolean", "isDate", "isDefined", "isNumber", "isObject", "isString", "isValid", "toBoolean",
    "toDate", "toNumber", "toString", "if",
    # math
    "isNaN", "isFinite", "abs", "acos", "asin", "atan", "atan2", "ceil", "clamp", "cos", "exp", "floor", "hypot",
    "log", "max", "min", "pow", "random", "round", "sin", "sqrt", "tan",
    # dates (not timeSequence/utcSequence: they enumerate)
    "now", "datetime", "date", "day", "dayofyear", "year", "quarter", "month", "week", "hours", "minutes",
    "seconds", "milliseconds", "time", "timezoneoffset", "timeOffset", "utc", "utcdate", "utcday", "utcdayofyear",
    "utcyear", "utcquarter", "utcmonth", "utcweek", "utchours", "utcminutes", "utcseconds", "utcmilliseconds",
    "utcOffset",
    # arrays and strings whose result is no larger than their input (not sequence, pad, split)
    "extent", "clampRange", "indexof", "inrange", "join", "lastindexof", "length", "lerp", "peek", "reverse",
    "slice", "span", "lower", "upper", "parseFloat", "parseInt", "replace", "substring", "trim", "truncate",
    # formats and colours
    "format", "timeFormat", "utcFormat", "timeParse", "utcParse", "dayFormat", "dayAbbrevFormat", "monthFormat",
    "monthAbbrevFormat", "rgb", "hsl", "lab", "hcl", "luminance", "contrast",
})
# The second argument of these is a d3 format specifier, whose width and precision size the output.
_SPECIFIER_ARGUMENT = frozenset({"format", "timeFormat", "utcFormat", "timeParse", "utcParse"})
_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_$][\w$]*)
  | (?P<operator>===|!==|==|!=|<=|>=|&&|\|\||\?\?|>>>|<<|>>|[-+*/%!<>~&|^?:.,()\[\]{}=])
""", re.VERBOSE | re.DOTALL)
# After these a "/" divides; anywhere else it opens a regular-expression literal.
_ENDS_OPERAND = frozenset({"string", "number", "name", ")", "]", "}"})
_LONG_NUMBER = re.compile(r"\d{3,}")


def check_expression(text: str, where: str) -> None:
    """Raise ``ChartTooExpensive`` unless ``text`` only calls allowed functions with bounded arguments."""
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ChartTooExpensive(f"{where}: the expression is {len(text)} characters; at most "
                                f"{MAX_EXPRESSION_CHARS} are allowed")
    tokens = list(_tokens(text, where))
    for index, (kind, value) in enumerate(tokens):
        if kind != "name" or index + 1 >= len(tokens) or tokens[index + 1][1] != "(":
            continue
        if index > 0 and tokens[index - 1][1] == ".":
            raise ChartTooExpensive(f"{where}: method calls like .{value}() are not allowed in expressions")
        if value not in ALLOWED_FUNCTIONS:
            raise ChartTooExpensive(f"{where}: the expression may not call {value}() (it can build large arrays "
                                    f"or strings, or is not needed for a chart); allowed functions: "
                                    f"{', '.join(sorted(ALLOWED_FUNCTIONS))}")
        if value in _SPECIFIER_ARGUMENT:
            _check_specifier_argument(tokens, index + 1, value, where)


def check_format(specifier: str, where: str) -> None:
    """Refuse a d3 number or time format whose width or precision would make each label enormous."""
    if len(specifier) > MAX_FORMAT_CHARS or _LONG_NUMBER.search(specifier):
        raise ChartTooExpensive(f"{where}: format {specifier[:40]!r} is refused: at most {MAX_FORMAT_CHARS} "
                                "characters and no width or precision above 99 (e.g. ',.2f', '.1%', '%Y-%m')")


def _tokens(text: str, where: str) -> Iterator[tuple[str, str]]:
    position, previous = 0, ""
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise ChartTooExpensive(f"{where}: unexpected character {text[position]!r} in the expression")
        position = match.end()
        kind = match.lastgroup or ""
        if kind == "space":
            continue
        value = match.group()
        if value == "/" and previous not in _ENDS_OPERAND:
            raise ChartTooExpensive(f"{where}: regular expressions are not allowed in chart expressions")
        previous = kind if kind in ("string", "number", "name") else value
        yield kind, value


def _check_specifier_argument(tokens: list[tuple[str, str]], open_index: int, function: str, where: str) -> None:
    """Require the specifier (second argument) of a format call to be one short string literal."""
    depth, argument, current = 0, 0, []
    for kind, value in tokens[open_index:]:
        if value in "([{" and kind == "operator":
            depth += 1
            if depth == 1:
                continue
        elif value in ")]}" and kind == "operator":
            depth -= 1
            if depth == 0:
                break
        elif value == "," and depth == 1:
            argument += 1
            continue
        if argument == 1:
            current.append((kind, value))
    if len(current) != 1 or current[0][0] != "string":
        raise ChartTooExpensive(f"{where}: the format of {function}() must be a string literal, e.g. ',.2f'")
    check_format(current[0][1][1:-1], where)
