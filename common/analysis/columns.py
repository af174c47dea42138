"""Column names SQL and users can both live with, and nested values flattened to JSON text."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from common.errors import BadRequest

if TYPE_CHECKING:
    import polars as pl

# C0/C1 controls plus the invisible format characters (zero-width spaces, BOM) that sneak into headers.
_INVISIBLE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202f\u2060-\u206f\ufeff]")
_MAX_RENAME_WARNINGS = 20


def check_column_count(count: int, limit: int) -> None:
    """Refuse a table wider than ``limit`` columns."""
    if count > limit:
        raise BadRequest(f"the table has {count:,} columns; at most {limit:,} are allowed",
                         code="TOO_MANY_COLUMNS", details={"columns": count, "limit": limit})


def normalise_names(raw: Sequence[str]) -> tuple[list[str], list[str]]:
    """Return clean, unique column names for ``raw`` and one warning per rename."""
    cleaned = [_INVISIBLE.sub("", str(name)).strip() or f"column_{position}" for position, name in enumerate(raw, 1)]
    # Every cleaned name is reserved up front, so a generated "a_2" never steals a later column's real name.
    reserved = {name.lower() for name in cleaned}
    taken: set[str] = set()
    names = []
    for name in cleaned:
        final, suffix = name, 2
        # Compared lower-cased: SQL identifiers are case-insensitive, so "Id" and "ID" would collide.
        while final.lower() in taken or (final != name and final.lower() in reserved):
            final = f"{name}_{suffix}"
            suffix += 1
        taken.add(final.lower())
        names.append(final)
    renames = [f"column {original!r} renamed to {final!r}"
               for original, final in zip(raw, names, strict=True) if original != final]
    if len(renames) > _MAX_RENAME_WARNINGS:
        renames = renames[:_MAX_RENAME_WARNINGS] + [f"{len(renames) - _MAX_RENAME_WARNINGS} more columns renamed"]
    return names, renames


def normalise_frame(frame: pl.LazyFrame, max_columns: int,
                    raw_names: Sequence[str] | None = None) -> tuple[pl.LazyFrame, list[str]]:
    """Give a frame clean unique column names and turn nested columns into JSON text."""
    import polars as pl

    schema = frame.collect_schema()
    check_column_count(len(schema), max_columns)
    names, warnings = normalise_names(raw_names if raw_names is not None else schema.names())
    converted: dict[str, list[str]] = {}
    selected = []
    for (column, dtype), name in zip(schema.items(), names, strict=True):
        expression, stored_as = _sql_friendly(pl.col(column), dtype)
        selected.append(expression.alias(name))
        if stored_as:
            converted.setdefault(stored_as, []).append(repr(name))
    warnings += [f"{kind} in column(s) {', '.join(columns)}" for kind, columns in converted.items()]
    return wide_integers_as_decimal(frame.select(selected)), warnings


def wide_integers_as_decimal(frame: pl.LazyFrame) -> pl.LazyFrame:
    """Store integers beyond 64 bits (Polars reads 20-digit ids as 128-bit) as DECIMAL(38, 0).

    Arrow cannot open a Parquet file with 128-bit integer columns, and the SQL engine scans the Parquet copy
    through Arrow; DuckDB, Polars and JSON all read the decimal. A value of 39 digits fails the cast, loudly.
    """
    import polars as pl

    return frame.with_columns(pl.col(pl.Int128, pl.UInt128).cast(pl.Decimal(38, 0)))


def _sql_friendly(column: pl.Expr, dtype: pl.DataType) -> tuple[pl.Expr, str | None]:
    """Return an expression storing the column as a type CSV, JSON and SQL all handle, and what changed."""
    import polars as pl

    if dtype == pl.Struct:
        encoded = column.struct.json_encode()
    elif dtype.is_nested():
        # polars encodes only structs, so wrap the list in a one-field struct and peel the wrapper off again.
        encoded = pl.struct(column.alias("v")).struct.json_encode().str.strip_prefix('{"v":').str.strip_suffix("}")
    elif dtype == pl.Binary:
        return column.bin.encode("base64"), "binary values stored as base64 text"
    elif dtype == pl.Null:
        return column.cast(pl.String), None  # an all-null column gets a concrete type every engine reads
    else:
        return column, None
    return pl.when(column.is_not_null()).then(encoded), "nested values stored as JSON text"
