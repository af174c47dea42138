"""Rows to write into Postgres: JSON rows or an uploaded file as a Polars frame, and each column's SQL type.

Types are inferred by Polars (every JSON row is read, not a sample; an uploaded file goes through the same
``common.analysis.ingest`` as a dataset upload), then mapped to the Postgres type that holds every value:
unsigned 64-bit and wider integers become NUMERIC, nested values JSONB, all-null columns TEXT.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from common import errors
from common.services.postgres.connections import check_identifier

if TYPE_CHECKING:
    import polars as pl

    from common.config import Settings

BATCH_ROWS = 1000
MAX_JSON_ROWS = 50_000


def frame_from_rows(rows: Any) -> pl.DataFrame:
    """Validate JSON rows (a non-empty list of objects) and return them as a frame, types inferred."""
    import polars as pl

    if not isinstance(rows, list) or not rows:
        raise errors.BadRequest("'rows' must be a non-empty list of objects", code="MISSING_FIELD")
    if len(rows) > MAX_JSON_ROWS:
        raise errors.BadRequest(f"at most {MAX_JSON_ROWS} rows per request; upload a file for more")
    if not all(isinstance(row, dict) and row for row in rows):
        raise errors.BadRequest("every row must be a non-empty JSON object of column -> value")
    names = list(dict.fromkeys(name for row in rows for name in row))
    for name in names:
        check_identifier(name, "column name")
    try:
        frame = pl.from_dicts(rows, schema=names, infer_schema_length=None)
    except (pl.exceptions.PolarsError, TypeError, ValueError, OverflowError) as exc:
        raise errors.BadRequest(f"the rows cannot be read as a table: {str(exc).splitlines()[0]}") from None
    return frame


def frame_from_upload(path: str, filename: str, settings: Settings, workdir: str, sheet: str | None) -> pl.DataFrame:
    """Parse an uploaded CSV/Excel/Parquet/JSON file as a dataset upload is parsed; return its (chosen) sheet."""
    import polars as pl

    from common.analysis.ingest import IngestLimits, ingest

    result = ingest(path, filename, IngestLimits.from_settings(settings), os.path.join(workdir, "ingest"))
    if result.kind != "table":
        raise errors.BadRequest(f"{filename!r} is a document, not a table", code="NOT_A_TABLE")
    tables = result.tables
    if sheet is not None:
        tables = [table for table in tables if table.sheet == sheet]
        if not tables:
            raise errors.BadRequest(f"{filename!r} has no sheet {sheet!r}", code="SHEET_NOT_FOUND")
    if len(tables) > 1:
        sheets = [table.sheet for table in result.tables]
        raise errors.BadRequest(f"{filename!r} has several sheets; name one in 'sheet': {sheets}",
                                code="SHEET_REQUIRED")
    frame = pl.read_parquet(tables[0].parquet_path)
    for name in frame.columns:
        check_identifier(name, "column name")
    return frame


def sql_type(dtype: Any) -> Any:
    """Return the SQLAlchemy type that stores every value of a Polars ``dtype``."""
    import polars as pl
    import sqlalchemy as sa
    from sqlalchemy.dialects import postgresql

    simple = {pl.Int8: sa.SmallInteger, pl.Int16: sa.SmallInteger, pl.UInt8: sa.SmallInteger,
              pl.Int32: sa.Integer, pl.UInt16: sa.Integer, pl.Int64: sa.BigInteger, pl.UInt32: sa.BigInteger,
              pl.Float32: sa.REAL, pl.Float64: sa.Double, pl.Boolean: sa.Boolean, pl.Date: sa.Date,
              pl.Time: sa.Time, pl.Duration: sa.Interval, pl.Binary: sa.LargeBinary}
    base = dtype.base_type()
    if base in simple:
        return simple[base]()
    if base in (pl.UInt64, pl.Int128, pl.UInt128):
        return sa.Numeric(39, 0)
    if base == pl.Decimal:
        return sa.Numeric(dtype.precision, dtype.scale)
    if base == pl.Datetime:
        return sa.DateTime(timezone=dtype.time_zone is not None)
    if base in (pl.List, pl.Array, pl.Struct):
        return postgresql.JSONB()
    return sa.Text()  # String, Categorical, Enum, Null and anything else: text holds it


def columns_for(frame: pl.DataFrame) -> list[Any]:
    """Return one SQLAlchemy column per frame column, named exactly as the frame names it."""
    import sqlalchemy as sa

    return [sa.Column(name, sql_type(dtype)) for name, dtype in frame.schema.items()]


def batches(frame: pl.DataFrame) -> Iterator[list[dict[str, Any]]]:
    """Yield the frame's rows as dicts, ``BATCH_ROWS`` at a time."""
    for chunk in frame.iter_slices(BATCH_ROWS):
        yield chunk.to_dicts()
