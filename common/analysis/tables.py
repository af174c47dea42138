"""Reads the service answers from a table's Parquet copy: previews and exports, with JSON-safe values."""

from __future__ import annotations

import base64
import datetime
import decimal
import math
import os
import shutil
from typing import TYPE_CHECKING, Any

from common.errors import BadRequest

if TYPE_CHECKING:
    import polars as pl

EXPORT_FORMATS = ("csv", "json", "parquet")


def json_safe_value(value: Any) -> Any:
    """Return ``value`` as something ``json.dumps`` accepts: ISO dates, None for NaN/inf, floats for decimals."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (datetime.date, datetime.time)):  # datetime.datetime is a date too
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return _decimal(value)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {str(key): json_safe_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe_value(item) for item in value]
    return str(value)


def json_safe_rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Return a frame's rows as dicts in column order, every value JSON-safe."""
    return [{name: json_safe_value(value) for name, value in row.items()} for row in frame.iter_rows(named=True)]


def read_preview(parquet_path: str, n: int | None) -> dict[str, Any]:
    """Return the first ``n`` rows of a table (all rows when None) and its columns, JSON-safe."""
    import polars as pl

    frame = pl.scan_parquet(parquet_path)
    frame = (frame if n is None else frame.head(n)).collect()
    columns = [{"name": name, "dtype": str(dtype)} for name, dtype in frame.schema.items()]
    return {"columns": columns, "rows": json_safe_rows(frame)}


def export(parquet_path: str, fmt: str, out_path: str, *, limit: int | None = None) -> None:
    """Write a table (its first ``limit`` rows when given) to ``out_path`` as csv, json or parquet, streaming."""
    import polars as pl

    if fmt not in EXPORT_FORMATS:
        raise BadRequest(f"cannot export as {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}",
                         code="UNSUPPORTED_FORMAT", details={"accepted": list(EXPORT_FORMATS)})
    frame = pl.scan_parquet(parquet_path)
    if limit is not None:
        frame = frame.head(limit)
    if fmt == "parquet":
        if limit is None:
            shutil.copyfile(parquet_path, out_path)  # the stored copy already is the normalised table
        else:
            frame.sink_parquet(out_path)
    elif fmt == "csv":
        durations = [name for name, dtype in frame.collect_schema().items() if dtype == pl.Duration]
        # CSV has no duration type (polars refuses to write one); ISO 8601 text matches the JSON export.
        frame.with_columns(pl.col(durations).dt.to_string("iso")).sink_csv(out_path, check_extension=False)
    else:
        _export_json_array(frame, out_path)


def _export_json_array(frame: pl.LazyFrame, out_path: str) -> None:
    # polars streams NDJSON only; each line is one record, so joining the lines with commas is the array.
    lines_path = out_path + ".ndjson.part"
    frame.sink_ndjson(lines_path)
    try:
        with open(lines_path, encoding="utf-8") as lines, open(out_path, "w", encoding="utf-8") as out:
            out.write("[")
            separator = "\n"
            for line in lines:
                out.write(separator + line.rstrip("\n"))
                separator = ",\n"
            out.write("\n]\n")
    finally:
        os.remove(lines_path)


def _decimal(value: decimal.Decimal) -> float | str | None:
    if not value.is_finite():
        return None
    as_float = float(value)
    # A float that reads back equal loses nothing; otherwise keep every digit as text.
    return as_float if decimal.Decimal(repr(as_float)) == value else str(value)
