"""Excel, JSON and Parquet readers: each returns raw tables for ingest to normalise and write."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from common.analysis.archives import verified_copy
from common.errors import BadRequest

if TYPE_CHECKING:
    import polars as pl

_UNNAMED = re.compile(r"__UNNAMED__\d+")  # fastexcel's name for a header cell left blank
_NDJSON_SAMPLE = 1 << 20


@dataclass(frozen=True)
class RawTable:
    sheet: str | None
    frame: pl.LazyFrame
    raw_names: list[str] | None = None  # header as the file has it, when the reader already renamed columns


def read_excel(path: str, fmt: str, max_uncompressed_bytes: int) -> tuple[list[RawTable], list[str]]:
    """Read every non-empty sheet of an .xlsx/.xls workbook; return the sheets and warnings."""
    if fmt != "xlsx":
        return _read_workbook(path)
    # calamine reads only the re-packed copy, whose every byte was counted against the budget.
    with verified_copy(path, max_uncompressed_bytes, suffix=".xlsx") as verified:
        return _read_workbook(verified)


def _read_workbook(path: str) -> tuple[list[RawTable], list[str]]:
    import polars as pl

    typed = _read_sheets(path)
    # calamine coerces a cell that does not fit its column's guessed type to null, silently. A second read
    # as text, only when some typed column has nulls at all, shows which columns lost values that way.
    suspect = any(series.dtype != pl.String and series.null_count() for frame in typed.values()
                  for series in frame.iter_columns())
    texts = _read_sheets(path, {"dtypes": "string"}) if suspect else {}
    tables, warnings = [], []
    for sheet, frame in typed.items():
        frame = _drop_empty(_restore_text(frame, texts.get(sheet), warnings, sheet))
        if frame.height == 0:
            warnings.append(f"sheet {sheet!r} has no data rows; skipped")
            continue
        raw_names = ["" if _UNNAMED.fullmatch(name) else name for name in frame.columns]
        tables.append(RawTable(sheet, frame.lazy(), raw_names))
    if not tables:
        raise BadRequest("the workbook has no sheet with data", code="EMPTY_FILE")
    return tables, warnings


def _read_sheets(path: str, read_options: dict | None = None) -> dict[str, pl.DataFrame]:
    import fastexcel
    import polars as pl

    with parser_errors("the workbook", fastexcel.FastExcelError, pl.exceptions.PolarsError, ValueError, OSError):
        # Empty rows and columns are kept so that the typed and the text read line up cell for cell.
        return pl.read_excel(path, sheet_id=0, engine="calamine", raise_if_empty=False, infer_schema_length=None,
                             read_options=read_options, drop_empty_rows=False, drop_empty_cols=False)


def _restore_text(frame: pl.DataFrame, text: pl.DataFrame | None, warnings: list[str], sheet: str) -> pl.DataFrame:
    import polars as pl

    if text is None:
        return frame
    for name, series in zip(frame.columns, frame.iter_columns(), strict=True):
        if series.dtype != pl.String and series.null_count() > text[name].null_count():
            warnings.append(f"sheet {sheet!r}: column {name!r} kept as text: some cells are not {series.dtype}")
            frame = frame.with_columns(text[name])
    return frame


def _drop_empty(frame: pl.DataFrame) -> pl.DataFrame:
    import polars as pl

    blank = [name for name in frame.columns if _UNNAMED.fullmatch(name) and frame[name].null_count() == frame.height]
    frame = frame.drop(blank)
    return frame.filter(~pl.all_horizontal(pl.all().is_null())) if frame.width else frame


def read_json(path: str, fmt: str) -> tuple[str, list[RawTable], list[str]]:
    """Read a JSON array of objects, an object holding one such array, or NDJSON; return the real format too."""
    import polars as pl

    if fmt == "ndjson" or _looks_like_ndjson(path):
        # Whole-file inference: a key whose type changes late in the file becomes text instead of failing.
        return "ndjson", [RawTable(None, pl.scan_ndjson(path, infer_schema_length=None))], []
    try:
        frame = pl.read_json(path, infer_schema_length=None)
    except pl.exceptions.PolarsError as exc:
        raise _json_error(path, exc) from exc
    if _first_char(path) == "[":
        return "json", [RawTable(None, frame.lazy())], []
    record_lists = [name for name, dtype in frame.schema.items()
                    if isinstance(dtype, pl.List) and isinstance(dtype.inner, pl.Struct)]
    if not record_lists:
        return "json", [RawTable(None, frame.lazy())], ["the JSON object was read as a single row"]
    if len(record_lists) > 1:
        raise BadRequest(f"the JSON object holds several arrays of records ({', '.join(record_lists)}); "
                         "upload one array", code="JSON_SHAPE")
    key = record_lists[0]
    rows = frame.lazy().select(pl.col(key).explode()).drop_nulls().unnest(key)
    return "json", [RawTable(None, rows)], [f"rows read from the {key!r} array"]


def read_parquet(path: str) -> list[RawTable]:
    """Open a Parquet file lazily after checking that its schema is readable."""
    import polars as pl

    with parser_errors("the Parquet file", pl.exceptions.PolarsError, OSError, ValueError):
        pl.read_parquet_schema(path)
    return [RawTable(None, pl.scan_parquet(path))]


@contextmanager
def parser_errors(what: str, *errors: type[BaseException]) -> Iterator[None]:
    """Turn ``errors``, and any Rust panic from a pyo3 extension (polars, calamine), into a CORRUPT_FILE 400."""
    try:
        yield
    except errors as exc:
        raise BadRequest(f"{what} could not be read: {_first_line(exc)}", code="CORRUPT_FILE") from exc
    except BaseException as exc:
        # pyo3 raises PanicException, a BaseException subclass each extension defines anew; match it by name.
        if type(exc).__name__ != "PanicException":
            raise
        raise BadRequest(f"{what} could not be read: {_first_line(exc)}", code="CORRUPT_FILE") from exc


def _looks_like_ndjson(path: str) -> bool:
    with open(path, "rb") as handle:
        sample = handle.read(_NDJSON_SAMPLE)
    lines = [line for line in sample.splitlines()[:3] if line.strip()]
    if len(lines) < 2:
        return False
    try:
        return all(isinstance(json.loads(line), dict) for line in lines[:2])
    except ValueError:
        return False


def _first_char(path: str) -> str:
    with open(path, "rb") as handle:
        head = handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head[:1].decode("ascii", errors="replace")


def _json_error(path: str, exc: Exception) -> BadRequest:
    with open(path, "rb") as handle:
        head = handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"[") and head[1:].lstrip()[:1] not in (b"{", b"]", b""):
        return BadRequest("the JSON array holds plain values; expected an array of objects (one per row)",
                          code="JSON_SHAPE")
    return BadRequest(f"the file is not valid JSON: {_first_line(exc)}", code="CORRUPT_FILE")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
