"""The entry point the datasets service calls: one uploaded file in, normalised Parquet tables (or text) out."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from common.analysis.formats import ATTACHMENT_FORMATS, CONTENT_TYPES, resolve_format
from common.errors import BadRequest

if TYPE_CHECKING:
    from common.analysis.readers import RawTable
    from common.config import Settings


@dataclass(frozen=True)
class IngestLimits:
    max_columns: int
    ragged_row_tolerance: float
    max_uncompressed_bytes: int
    preview_rows: int
    attachment_text_chars: int
    max_cells: int = 100_000_000  # INGEST_MAX_CELLS's default

    @classmethod
    def from_settings(cls, settings: Settings) -> IngestLimits:
        """Build the limits from the instance settings."""
        return cls(settings.max_columns, settings.ragged_row_tolerance, settings.excel_max_uncompressed_bytes,
                   settings.preview_rows, settings.attachment_text_chars, settings.ingest_max_cells)


@dataclass(frozen=True)
class TableOutput:
    name: str  # the dataset's table name: the file name, or "file.xlsx#Sheet" per Excel sheet
    sheet: str | None
    parquet_path: str  # normalised full copy, inside workdir
    preview_path: str  # first preview_rows rows, for fast previews
    profile: dict[str, Any]
    rows: int
    columns: list[dict[str, str]]  # [{name, dtype}] in file order


@dataclass(frozen=True)
class IngestResult:
    kind: str  # "table" or "attachment"
    format: str
    content_type: str  # of the original file; delimited text names its charset (text/csv; charset=windows-1252)
    tables: list[TableOutput]
    text: str | None
    warnings: list[str]


def ingest(path: str, filename: str, limits: IngestLimits, workdir: str) -> IngestResult:
    """Parse the upload at ``path`` into Parquet tables (or attachment text) inside ``workdir``."""
    fmt = resolve_format(path, filename)
    if fmt in ATTACHMENT_FORMATS:
        from common.analysis.attachments import extract_text

        text, warnings = extract_text(path, fmt, limits.attachment_text_chars, limits.max_uncompressed_bytes)
        return IngestResult("attachment", fmt, CONTENT_TYPES[fmt], [], text, warnings)
    from common.analysis.readers import parser_errors

    os.makedirs(workdir, exist_ok=True)
    content_type = None
    with parser_errors(repr(filename)):  # a Rust panic on a hostile file is still the file's fault: 400
        if fmt in ("csv", "tsv"):
            fmt, content_type, tables, warnings = _ingest_delimited(path, filename, fmt, limits, workdir)
        else:
            fmt, tables, warnings = _ingest_structured(path, filename, fmt, limits, workdir)
    # Valid but empty: the user should hear that there is nothing to ask about yet.
    warnings += [f"no rows: {table.name!r} has column names but no data" for table in tables if not table.rows]
    return IngestResult("table", fmt, content_type or CONTENT_TYPES[fmt], tables, None, warnings)


def _ingest_delimited(path: str, filename: str, fmt: str, limits: IngestLimits,
                      workdir: str) -> tuple[str, str, list[TableOutput], list[str]]:
    """Read delimited text; its content type names the charset it was read in (the original is served so)."""
    from common.analysis.csv_reader import convert_csv

    parquet_path, preview_path = _paths(workdir, 0)
    read = convert_csv(path, parquet_path, workdir, default_delimiter="\t" if fmt == "tsv" else ",",
                       max_columns=limits.max_columns, ragged_row_tolerance=limits.ragged_row_tolerance,
                       max_cells=limits.max_cells)
    if filename.lower().endswith(".txt") and read.delimiter == "\t":
        fmt = "tsv"
    content_type = CONTENT_TYPES[fmt] + (f"; charset={read.charset}" if read.charset else "")
    return fmt, content_type, [_finish(filename, None, parquet_path, preview_path, limits)], read.warnings


def _ingest_structured(path: str, filename: str, fmt: str, limits: IngestLimits,
                       workdir: str) -> tuple[str, list[TableOutput], list[str]]:
    from common.analysis import readers

    if fmt in ("xlsx", "xls"):
        raw_tables, warnings = readers.read_excel(path, fmt, limits.max_uncompressed_bytes, limits.max_cells)
    elif fmt in ("json", "ndjson"):
        fmt, raw_tables, warnings = readers.read_json(path, fmt, workdir, limits.max_cells)
    else:
        raw_tables, warnings = readers.read_parquet(path, limits.max_cells, limits.max_uncompressed_bytes), []
    tables = []
    for index, raw in enumerate(raw_tables):
        name = f"{filename}#{raw.sheet}" if raw.sheet is not None else filename
        table, table_warnings = _write_table(raw, name, _paths(workdir, index), limits)
        tables.append(table)
        warnings += [f"sheet {raw.sheet!r}: {w}" if raw.sheet is not None else w for w in table_warnings]
    return fmt, tables, warnings


def _write_table(raw: RawTable, name: str, paths: tuple[str, str],
                 limits: IngestLimits) -> tuple[TableOutput, list[str]]:
    import polars as pl

    from common.analysis.columns import normalise_frame
    from common.analysis.readers import parser_errors

    try:
        with parser_errors(repr(name), pl.exceptions.PolarsError):
            frame, warnings = normalise_frame(raw.frame, limits.max_columns, raw.raw_names)
            if not frame.collect_schema():
                raise BadRequest(f"{name!r} holds no columns", code="EMPTY_FILE")
            frame.sink_parquet(paths[0])
    finally:
        if raw.scratch is not None and os.path.exists(raw.scratch):
            os.remove(raw.scratch)  # on Cloud Run the disk is memory: drop the intermediate copy at once
    return _finish(name, raw.sheet, *paths, limits), warnings


def _finish(name: str, sheet: str | None, parquet_path: str, preview_path: str, limits: IngestLimits) -> TableOutput:
    import polars as pl
    import pyarrow.parquet as pq

    from common.analysis.profile import profile_table
    from common.analysis.table_budget import check_cells

    # One size for every format's table, whichever reader counted it first (the footer here is our own).
    written = pq.read_metadata(parquet_path)
    check_cells(written.num_rows, written.num_columns, limits.max_cells)
    pl.scan_parquet(parquet_path).head(limits.preview_rows).sink_parquet(preview_path)
    profile = profile_table(parquet_path, preview_path)
    columns = [{"name": column["name"], "dtype": column["dtype"]} for column in profile["columns"]]
    return TableOutput(name, sheet, parquet_path, preview_path, profile, profile["rows"], columns)


def _paths(workdir: str, index: int) -> tuple[str, str]:
    return os.path.join(workdir, f"table_{index}.parquet"), os.path.join(workdir, f"table_{index}.preview.parquet")
