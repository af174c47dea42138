"""How much a SQL result may carry, measured as the JSON the response will hold, while its rows are fetched.

Three bounds, for DuckDB and Postgres alike: at most ``max_rows`` rows; each value at most
``SQL_MAX_VALUE_BYTES`` (a larger one refuses the query with ``SQL_TOO_EXPENSIVE``: no cut could make it fit,
and a model can repair the query by returning a prefix, a length or an aggregate instead); and the rows
together at most the bytes left of ``SQL_MAX_RESULT_BYTES`` once the rest of the response is counted (the rows
past it are cut, ``truncated``). Callers add rows a batch at a time and stop fetching when ``add`` says the
result is full, so no one ever holds more than the budget plus one batch. Sizes are those of
``common.http.json_response``: compact UTF-8 JSON.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from common.analysis.sql_errors import SqlTooExpensive
from common.analysis.tables import json_safe_value

# The response's fields other than the rows (counts, flags, elapsed time, the engine's name): a generous
# allowance on top of what ``envelope_bytes`` measures.
ENVELOPE_ALLOWANCE = 1024


@dataclasses.dataclass(frozen=True)
class ResultLimits:
    max_rows: int
    max_value_bytes: int
    max_result_bytes: int


def json_bytes(value: Any) -> int:
    """Return the size of ``value`` (JSON-safe) as compact UTF-8 JSON."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def envelope_bytes(*parts: Any) -> int:
    """Return what the response holds besides its rows: ``parts`` (columns, the SQL...) and the allowance."""
    return sum(json_bytes(part) for part in parts) + ENVELOPE_ALLOWANCE


class ResultBudget:
    """The rows of one result that fit the limits, JSON-safe, and the raw rows they came from."""

    def __init__(self, names: Sequence[str], limits: ResultLimits, *, envelope: int = ENVELOPE_ALLOWANCE):
        self.names = list(names)
        self.rows: list[dict[str, Any]] = []
        self.raw_rows: list[tuple] = []
        self.truncated = False
        self.limits = limits
        self._room = limits.max_result_bytes - envelope - 2  # the rows' list brackets
        self._used = 0

    def add(self, batch: Sequence[Sequence[Any]]) -> bool:
        """Keep what fits of ``batch``; return False once the result is full (a later row would be cut)."""
        room = self.limits.max_rows - len(self.rows)
        raw = [tuple(row) for row in batch[:room]]
        safe = [dict(zip(self.names, map(json_safe_value, row), strict=True)) for row in raw]
        size = json_bytes(safe)
        if size <= self.limits.max_value_bytes and self._used + size <= self._room:
            self._keep(raw, safe, size)  # the common case: nothing in the batch can break either bound
        else:
            for raw_row, row in zip(raw, safe, strict=True):
                if not self._fits(raw_row, row):
                    self.truncated = True
                    return False
        if len(batch) > room:
            self.truncated = True
            return False
        return True

    def _keep(self, raw: list[tuple], safe: list[dict[str, Any]], size: int) -> None:
        self.raw_rows += raw
        self.rows += safe
        self._used += size

    def _fits(self, raw_row: tuple, row: dict[str, Any]) -> bool:
        """Keep ``row`` if it fits; refuse a value over the value cap, and a first row over the whole budget."""
        size = json_bytes(row) + 1  # and the comma before the next
        if size > self.limits.max_value_bytes:
            self._refuse_large_values(row)
        if self._used + size > self._room:
            if not self.rows:
                raise SqlTooExpensive(
                    f"one row of the result is {size} bytes, more than the {self.limits.max_result_bytes}-byte "
                    "result limit; select fewer or shorter columns",
                    details={"row_bytes": size, "max_result_bytes": self.limits.max_result_bytes})
            return False
        self._keep([raw_row], [row], size)
        return True

    def _refuse_large_values(self, row: dict[str, Any]) -> None:
        for name, value in row.items():
            size = json_bytes(value)
            if size > self.limits.max_value_bytes:
                raise SqlTooExpensive(
                    f"column {name!r} holds a {size}-byte value, more than the {self.limits.max_value_bytes}-byte "
                    "limit on one value; return a prefix (left(x, n)), its length or an aggregate instead",
                    details={"column": name, "value_bytes": size, "max_value_bytes": self.limits.max_value_bytes})
