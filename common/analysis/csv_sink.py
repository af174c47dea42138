"""The polars half of CSV ingest: scan checked text lazily and sink it to Parquet, recovering when polars refuses.

Two refusals are recoverable. A value after the inference window that does not fit its column's type: the
misfit columns are found and widened. Quoting that Python's csv module reads but polars rejects (``5'10"``,
``"a" b``): the file is rewritten through the csv module, which the ragged-row counts already trust.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from typing import TYPE_CHECKING

from common.analysis.columns import wide_integers_as_decimal
from common.errors import BadRequest

if TYPE_CHECKING:
    import polars as pl

INFER_ROWS = 10_000


@dataclasses.dataclass(frozen=True)
class ScanOptions:
    source: str  # UTF-8 text (the upload itself, or its transcoded copy)
    delimiter: str
    names: list[str]  # normalised column names, replacing the header
    encoding: str  # polars encoding: "utf8" or "utf8-lossy"
    truncate: bool  # cut rows longer than the header (the ragged rows were within tolerance)
    drop_blank: bool  # drop rows polars made of blank lines


def sink_parquet(options: ScanOptions, out_path: str, workdir: str) -> list[str]:
    """Convert the text described by ``options`` to Parquet at ``out_path``; return warnings."""
    import polars as pl

    try:
        return _sink_typed(options, out_path)
    except pl.exceptions.PolarsError:
        pass  # quoting polars rejects; the csv module's reading of the same text is the one to keep
    repaired = _rewrite(options, os.path.join(workdir, "source.repaired.csv"))
    try:
        return _sink_typed(repaired, out_path) + ["irregular quoting repaired (as Python's csv module reads it)"]
    except pl.exceptions.PolarsError as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise BadRequest(f"the file could not be read as delimited text: {reason}", code="CORRUPT_FILE") from exc
    finally:
        os.remove(repaired.source)


def _sink_typed(options: ScanOptions, out_path: str) -> list[str]:
    import polars as pl

    try:
        wide_integers_as_decimal(_scan(options)).sink_parquet(out_path)
        return []
    except pl.exceptions.PolarsError:
        pass  # usually a value past the first INFER_ROWS rows that does not fit the inferred type
    schema, warnings = _widened_schema(options)
    wide_integers_as_decimal(_scan(options, overrides=schema)).sink_parquet(out_path)
    return warnings


def _widened_schema(options: ScanOptions) -> tuple[dict[str, pl.DataType], list[str]]:
    """Find the columns whose late values break the inferred type and widen them (int, float, text)."""
    import polars as pl

    inferred = dict(_scan(options).collect_schema())
    text_nulls = _null_counts(_scan(options, infer=False))
    schema = dict(inferred)
    for _ in range(3):  # Int64 -> Float64 -> String is the longest chain
        # ignore_errors nulls each value that does not parse; more nulls than as plain text means a misfit.
        typed_nulls = _null_counts(_scan(options, overrides=schema, ignore_errors=True))
        misfits = [name for name in schema if typed_nulls[name] > text_nulls[name]]
        if not misfits:
            break
        for name in misfits:
            schema[name] = pl.Float64 if schema[name].is_integer() else pl.String
    warnings = [f"column {name!r} read as {dtype}, not {inferred[name]}: a value after the first "
                f"{INFER_ROWS:,} rows does not fit" for name, dtype in schema.items() if dtype != inferred[name]]
    return schema, warnings


def _rewrite(options: ScanOptions, target: str) -> ScanOptions:
    """Re-write the text through the csv module: regular quoting, every row exactly as wide as the header."""
    width = len(options.names)
    errors = "replace" if options.encoding == "utf8-lossy" else "strict"
    with (open(options.source, encoding="utf-8", errors=errors, newline="") as source,
          open(target, "w", encoding="utf-8", newline="") as out):
        writer = csv.writer(out, delimiter=options.delimiter, lineterminator="\n")
        for record in csv.reader(source, delimiter=options.delimiter):
            if record:
                writer.writerow((record + [""] * width)[:width])
    return dataclasses.replace(options, source=target, encoding="utf8", truncate=False, drop_blank=False)


def _null_counts(frame: pl.LazyFrame) -> dict[str, int]:
    import polars as pl

    return frame.select(pl.all().null_count()).collect(engine="streaming").row(0, named=True)


def _scan(options: ScanOptions, *, overrides: dict[str, pl.DataType] | None = None, infer: bool = True,
          ignore_errors: bool = False) -> pl.LazyFrame:
    import polars as pl

    frame = pl.scan_csv(
        options.source, separator=options.delimiter, new_columns=options.names, infer_schema=infer,
        infer_schema_length=INFER_ROWS, try_parse_dates=infer, schema_overrides=overrides,
        ignore_errors=ignore_errors, truncate_ragged_lines=options.truncate, encoding=options.encoding,
    )
    if options.drop_blank:
        # polars reads a blank line as a row of nulls; the text pass saw blank lines, so drop such rows.
        frame = frame.filter(~pl.all_horizontal(pl.all().is_null()))
    return frame
