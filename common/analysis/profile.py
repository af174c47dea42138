"""Column statistics of a written table, from its Parquet copy in one lazy pass, JSON-serialisable."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from common.analysis.tables import json_safe_value

if TYPE_CHECKING:
    import polars as pl

SAMPLES = 5
SAMPLE_CHARS = 80


def profile_table(parquet_path: str, sample_path: str) -> dict[str, Any]:
    """Return ``{"rows", "columns": [{name, dtype, null_count, stats..., samples}]}`` for a Parquet table.

    Statistics cover every row; samples come from ``sample_path`` (the preview copy) so that finding five
    distinct values never hashes a whole high-cardinality column. ``n_unique`` is approximate (HyperLogLog).
    """
    import polars as pl

    frame = pl.scan_parquet(parquet_path)
    schema = frame.collect_schema()
    planned = [(name, stat, expression) for name, dtype in schema.items()
               for stat, expression in _statistics(name, dtype).items()]
    # Positional aliases: column names may be anything, output names only need to be unique.
    expressions = [pl.len().alias("rows")] + [expr.alias(f"s{i}") for i, (_, _, expr) in enumerate(planned)]
    values = frame.select(expressions).collect(engine="streaming").row(0)
    columns: dict[str, dict[str, Any]] = {name: {"name": name, "dtype": str(dtype)} for name, dtype in schema.items()}
    for (name, stat, _), value in zip(planned, values[1:], strict=True):
        columns[name][stat] = json_safe_value(value)
    samples = _samples(sample_path)
    for name, column in columns.items():
        column["samples"] = samples.get(name, [])
    return {"rows": values[0], "columns": list(columns.values())}


def _statistics(name: str, dtype: pl.DataType) -> dict[str, pl.Expr]:
    import polars as pl

    column = pl.col(name)
    stats = {"null_count": column.null_count()}
    if dtype.is_numeric():
        as_float = column.cast(pl.Float64)
        stats.update(min=column.min(), max=column.max(), mean=as_float.mean(), std=as_float.std())
    elif dtype.is_temporal():
        stats.update(min=column.min(), max=column.max())
    elif dtype == pl.Boolean:
        stats["true_count"] = column.sum()
    elif isinstance(dtype, (pl.String, pl.Categorical, pl.Enum)):
        text = column.cast(pl.String)
        stats.update(n_unique=text.drop_nulls().approx_n_unique(), max_length=text.str.len_chars().max())
    return stats


def _samples(sample_path: str) -> dict[str, list[Any]]:
    import polars as pl

    preview = pl.read_parquet(sample_path)
    samples = {}
    for series in preview.iter_columns():
        values = series.drop_nulls()
        if values.dtype.is_float():
            values = values.filter(values.is_finite())  # NaN and inf would be sampled as JSON null
        distinct = values.unique(maintain_order=True).head(SAMPLES).to_list()
        samples[series.name] = [_truncate(json_safe_value(value)) for value in distinct]
    return samples


def _truncate(value: Any) -> Any:
    return value[:SAMPLE_CHARS] if isinstance(value, str) else value
