"""Values a download format cannot hold as they are, written as text the same way in every format.

Nested values (lists, structs, maps) become JSON, bytes base64 (as the JSON API gives them), DuckDB intervals
and durations ISO 8601 (``P1M3DT4H``, as a dataset's CSV export writes durations). CSV holds none of these,
Parquet no intervals or unions, and an XLSX cell only numbers, booleans, dates and text.
"""

from __future__ import annotations

import base64
import datetime
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

TypeCheck = Callable[["pa.DataType"], bool]


def as_text(value: Any) -> str | None:
    """Return ``value`` as the text a download writes for it (None stays None: an empty cell)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, datetime.timedelta):
        size = abs(value)
        text = _iso_duration(0, size.days, size.seconds * 1_000_000_000 + size.microseconds * 1000)
        return "-" + text if value < datetime.timedelta(0) else text
    if _is_month_day_nano(value):
        return _iso_duration(value.months, value.days, value.nanoseconds)
    return json.dumps(_jsonable(value), ensure_ascii=False)


def portable_schema(schema: pa.Schema, holds: TypeCheck) -> pa.Schema:
    """Return ``schema`` with every column whose type the format does not hold (``holds``) made text."""
    import pyarrow as pa

    return pa.schema([field if _holds_all(field.type, holds) else pa.field(field.name, pa.string())
                      for field in schema])


def portable_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """Return ``batch`` in ``portable_schema``'s types: the columns it made text are converted value by value."""
    import pyarrow as pa

    columns = [column if column.type == field.type else
               pa.array([as_text(value) for value in column.to_pylist()], type=pa.string())
               for column, field in zip(batch.columns, schema, strict=True)]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def csv_holds(kind: pa.DataType) -> bool:
    """Say whether a CSV writes values of ``kind`` as they are: flat numbers, booleans, text, dates and times."""
    import pyarrow as pa

    if pa.types.is_dictionary(kind):
        return csv_holds(kind.value_type)
    return any(check(kind) for check in (
        pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal, pa.types.is_boolean, pa.types.is_string,
        pa.types.is_large_string, pa.types.is_date, pa.types.is_time, pa.types.is_timestamp, pa.types.is_null))


def parquet_holds(kind: pa.DataType) -> bool:
    """Say whether Parquet holds ``kind`` (everything Arrow has but intervals and unions)."""
    import pyarrow as pa

    return not (pa.types.is_interval(kind) or pa.types.is_union(kind))


def _holds_all(kind: pa.DataType, holds: TypeCheck) -> bool:
    """Whether ``holds`` accepts ``kind`` and every type nested in it."""
    return holds(kind) and all(_holds_all(kind.field(index).type, holds) for index in range(kind.num_fields))


def _is_month_day_nano(value: Any) -> bool:
    return all(hasattr(value, part) for part in ("months", "days", "nanoseconds"))


def _iso_duration(months: int, days: int, nanoseconds: int) -> str:
    sign, seconds = ("-", -nanoseconds) if nanoseconds < 0 else ("", nanoseconds)
    whole, fraction = divmod(seconds, 1_000_000_000)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    date_part = (f"{months}M" if months else "") + (f"{days}D" if days else "")
    time_part = "".join(f"{sign}{amount}{unit}" for amount, unit in ((hours, "H"), (minutes, "M")) if amount)
    if secs or fraction:
        digits = f".{fraction:09d}".rstrip("0") if fraction else ""
        time_part += f"{sign}{secs}{digits}S"
    if not date_part and not time_part:
        return "PT0S"
    return f"P{date_part}" + (f"T{time_part}" if time_part else "")


def _jsonable(value: Any) -> Any:
    """A nested value as JSON-able data: its parts as the JSON API gives them, intervals as ISO 8601 text."""
    from common.analysis.tables import json_safe_value

    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, (datetime.timedelta, bytes, bytearray, memoryview)) or _is_month_day_nano(value):
        return as_text(value)
    return json_safe_value(value)
