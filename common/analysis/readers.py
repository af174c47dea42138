"""Excel, JSON and Parquet readers: each returns raw tables for ingest to normalise and write."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from common.analysis.archives import verified_copy
from common.analysis.table_budget import check_cells
from common.errors import BadRequest, PayloadTooLarge

if TYPE_CHECKING:
    import polars as pl

_UNNAMED = re.compile(r"__UNNAMED__\d+")  # fastexcel's name for a header cell left blank
_NDJSON_SAMPLE = 1 << 20
_JSON_CHUNK = 1 << 20
# One record (a JSON array's element, an NDJSON line), or an object read as one row: polars and json both
# build a long array at tens of bytes an element, so this bounds what one row can cost while it is parsed.
MAX_JSON_VALUE_CHARS = 4 * 1024 * 1024
_JSON_SPACE = re.compile(r"[ \t\r\n]*")
_DECODER = json.JSONDecoder()


@dataclass(frozen=True)
class RawTable:
    sheet: str | None
    frame: pl.LazyFrame
    raw_names: list[str] | None = None  # header as the file has it, when the reader already renamed columns
    scratch: str | None = None  # a file the frame reads, to delete once the table is written


def read_excel(path: str, fmt: str, max_uncompressed_bytes: int,
               max_cells: int) -> tuple[list[RawTable], list[str]]:
    """Read every non-empty sheet of an .xlsx/.xls workbook; return the sheets and warnings."""
    if fmt != "xlsx":
        return _read_workbook(path, max_cells)
    # calamine reads only the re-packed copy, whose every byte was counted against the budget.
    with verified_copy(path, max_uncompressed_bytes, suffix=".xlsx") as verified:
        return _read_workbook(verified, max_cells)


def _read_workbook(path: str, max_cells: int) -> tuple[list[RawTable], list[str]]:
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
        check_cells(frame.height, frame.width, max_cells)
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


def read_json(path: str, fmt: str, workdir: str, max_cells: int) -> tuple[str, list[RawTable], list[str]]:
    """Read a JSON array of objects, an object holding one such array, or NDJSON; return the real format too."""
    import polars as pl

    if fmt == "ndjson" or _looks_like_ndjson(path):
        _check_lines(path)
        # Whole-file inference: a key whose type changes late in the file becomes text instead of failing.
        return "ndjson", [RawTable(None, pl.scan_ndjson(path, infer_schema_length=None))], []
    # A JSON document parsed whole costs ~10-30x its size; its records are copied one by one to NDJSON
    # instead, which polars scans in streaming chunks like any NDJSON upload.
    target = os.path.join(workdir, "source.ndjson")
    try:
        with open(path, encoding="utf-8-sig") as handle, open(target, "w", encoding="utf-8") as out:
            warnings = _json_to_ndjson(_JsonText(handle), out, max_cells)
    except BaseException as exc:
        if os.path.exists(target):
            os.remove(target)
        if isinstance(exc, UnicodeDecodeError):
            raise BadRequest(f"the file is not valid UTF-8 JSON: {exc}", code="CORRUPT_FILE") from exc
        raise
    return "json", [RawTable(None, pl.scan_ndjson(target, infer_schema_length=None), scratch=target)], warnings


def read_parquet(path: str, max_cells: int, max_bytes: int) -> list[RawTable]:
    """Open a Parquet file for streaming after checking its footer and page headers against the budget."""
    import polars as pl
    import pyarrow as pa
    from polars.io.plugins import register_io_source

    from common.analysis.table_budget import plan_parquet, read_batches

    parquet_errors = (pa.ArrowException, pl.exceptions.PolarsError, OSError, ValueError)
    with parser_errors("the Parquet file", *parquet_errors):
        plan = plan_parquet(path, max_cells, max_bytes)
        schema = pl.from_arrow(plan.schema.empty_table()).schema

    def batches(*_: object) -> Iterator[pl.DataFrame]:
        # polars scans whole row groups at once; this source hands it only batches already counted.
        with parser_errors("the Parquet file", *parquet_errors):
            for batch in read_batches(path, plan, max_cells, max_bytes):
                yield pl.from_arrow(batch)

    return [RawTable(None, register_io_source(batches, schema=schema))]


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


def _check_lines(path: str) -> None:
    # polars parses one NDJSON line whole, at ~50x its size when it is a long array: 50 MB took 2.8 GB.
    with open(path, "rb") as handle:
        while line := handle.readline(MAX_JSON_VALUE_CHARS + 1):
            if len(line) > MAX_JSON_VALUE_CHARS:
                raise _value_too_large("an NDJSON line")


def _value_too_large(what: str) -> PayloadTooLarge:
    return PayloadTooLarge(f"{what} is over {MAX_JSON_VALUE_CHARS:,} characters; upload CSV or Parquet instead, "
                           "or NDJSON with shorter lines", code="JSON_VALUE_TOO_LARGE",
                           details={"max_chars": MAX_JSON_VALUE_CHARS})


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


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class _JsonText:
    """A JSON document read forward in chunks, keeping only the text from the current position on."""

    def __init__(self, handle: TextIO) -> None:
        self.handle, self.text, self.position, self.dropped, self.eof = handle, "", 0, 0, False

    def more(self) -> bool:
        """Append the next chunk (dropping the text already consumed); False at the end of the file."""
        chunk = "" if self.eof else self.handle.read(_JSON_CHUNK)
        self.eof = not chunk
        self.text, self.position, self.dropped = self.text[self.position:] + chunk, 0, self.dropped + self.position
        return bool(chunk)

    def peek(self, ahead: int = 0) -> str:
        """Return the first non-space character ``ahead`` characters on, "" at the end of the file."""
        while True:
            start = _JSON_SPACE.match(self.text, self.position + ahead).end()
            if start < len(self.text):
                if not ahead:
                    self.position = start
                return self.text[start]
            if not self.more():
                return ""

    def take(self, expected: str) -> str:
        """Consume and return the next non-space character, which must be one of ``expected``."""
        found = self.peek()
        if not found or found not in expected:
            raise BadRequest(f"the file is not valid JSON: expected {' or '.join(expected)} "
                             f"but found {found or 'the end of the file'!r}", code="CORRUPT_FILE")
        self.position += 1
        return found

    def value(self) -> tuple[object, str]:
        """Decode the next JSON value; return it and its text. Refuse one over MAX_JSON_VALUE_CHARS."""
        if self.position >= len(self.text) or self.text[self.position] in " \t\r\n":
            self.peek()
        while True:
            try:
                value, end = _DECODER.raw_decode(self.text, self.position)
                if end < len(self.text) or self.eof:  # else a number may go on in the next chunk
                    raw, self.position = self.text[self.position:end], end
                    return value, raw
            except json.JSONDecodeError as exc:
                # An error near the end of the window may only be the value going on in the next chunk.
                cut = exc.pos >= len(self.text) - 8 or exc.msg.startswith("Unterminated string")
                if self.eof or not cut:
                    raise BadRequest(f"the file is not valid JSON: {exc.msg} (at character {self.dropped + exc.pos:,})",
                                     code="CORRUPT_FILE") from exc
            if len(self.text) - self.position > MAX_JSON_VALUE_CHARS:
                raise _value_too_large("a single JSON record or value")
            self.more()


def _json_to_ndjson(text: _JsonText, out: TextIO, max_cells: int) -> list[str]:
    """Copy the rows of a JSON document to ``out`` as NDJSON, one record a line; return warnings."""
    if text.peek() == "[":
        if not _copy_records(text, out, max_cells, None):
            raise BadRequest("the JSON array holds no records", code="EMPTY_FILE")
        warnings = []
    else:
        warnings = _copy_object(text, out, max_cells)
    if text.peek():
        raise BadRequest("the file is not valid JSON: extra data after the document", code="CORRUPT_FILE")
    return warnings


def _copy_records(text: _JsonText, out: TextIO, max_cells: int, key: str | None) -> int:
    text.take("[")
    if text.peek() == "]":
        text.position += 1
        return 0
    rows = 0
    while True:
        record, raw = text.value()
        if isinstance(record, dict):
            # A raw line break can only be white space between tokens (inside strings JSON escapes it).
            out.write(raw.replace("\n", " ").replace("\r", " ") + "\n")
            rows += 1
            check_cells(rows, 1, max_cells)
        elif record is not None or key is None:
            shape = "holds plain values" if key is None else f"{key!r} mixes records and other values"
            raise BadRequest(f"the JSON array {shape}; expected an array of objects (one per row)", code="JSON_SHAPE")
        if text.take(",]") == "]":
            return rows


def _copy_object(text: _JsonText, out: TextIO, max_cells: int) -> list[str]:
    text.take("{")
    arrays, others, kept = [], [], 0
    while text.peek() != "}":
        key, _ = text.value()
        if not isinstance(key, str):
            raise BadRequest("the file is not valid JSON: an object key is not a string", code="CORRUPT_FILE")
        text.take(":")
        if text.peek() == "[" and text.peek(1) == "{":
            arrays.append(key)
            if len(arrays) > 1:
                raise BadRequest(f"the JSON object holds several arrays of records ({', '.join(arrays)}); "
                                 "upload one array", code="JSON_SHAPE")
            _copy_records(text, out, max_cells, key)
            others.clear()  # the object's other values are dropped once it has records
        else:
            _, raw = text.value()
            if not arrays:  # kept only while the object may still be read as one row
                kept += len(key) + len(raw) + 64  # and ~100 bytes of Python objects for each
                if kept > MAX_JSON_VALUE_CHARS:
                    raise _value_too_large("the JSON object, read as one row,")
                others.append((json.dumps(key), raw.replace("\n", " ").replace("\r", " ")))
        if text.take(",}") == "}":
            break
    else:
        text.position += 1  # the "}" of an empty object
    if arrays:
        return [f"rows read from the {arrays[0]!r} array"]
    out.write("{" + ",".join(f"{key}:{raw}" for key, raw in others) + "}\n")
    return ["the JSON object was read as a single row"]
