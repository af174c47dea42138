"""Delimited text (CSV/TSV) to Parquet, streamed: encoding, delimiter and ragged rows.

One Python pass reads the whole file once, line by line: it proves the encoding, counts fields per record
(quotes respected) and, when the file is not UTF-8, writes a UTF-8 copy. polars then scans that text lazily
and sinks it to Parquet (``csv_sink``), so neither step ever holds the file in memory. Text columns that hold
numbers written with decimal commas or thousands separators are then read as numbers (``number_formats``).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from itertools import islice
from typing import TextIO

from common.analysis.columns import check_column_count, normalise_names
from common.analysis.csv_sink import ScanOptions, sink_parquet
from common.analysis.encoding import TextEncoding, detect_encoding, fallback_encoding
from common.analysis.number_formats import read_formatted_numbers
from common.analysis.table_budget import check_cells
from common.errors import BadRequest

DELIMITERS = (",", ";", "\t", "|")
SAMPLE_BYTES = 1 << 20
SNIFF_LINES = 50
_EXAMPLES = 5
_FIELD_LIMIT = 16 * 1024 * 1024
_DELIMITER_NAMES = {",": "commas", ";": "semicolons", "\t": "tabs", "|": "pipes"}


@dataclass
class _TextPass:
    """What one streaming pass over the whole text learned."""

    header: list[str]
    rows: int = 0
    long_rows: int = 0
    short_rows: int = 0
    blank_lines: int = 0
    long_examples: list[tuple[int, int]] = field(default_factory=list)


@dataclass(frozen=True)
class CsvConversion:
    delimiter: str
    charset: str | None  # the file's charset by its IANA name, None when it has none
    warnings: list[str]


def convert_csv(path: str, out_path: str, workdir: str, *, default_delimiter: str, max_columns: int,
                ragged_row_tolerance: float, max_cells: int) -> CsvConversion:
    """Convert a delimited text file to Parquet at ``out_path``; say how it was read."""
    with open(path, "rb") as handle:
        sample = handle.read(SAMPLE_BYTES)
        at_eof = not handle.read(1)
    encoding = detect_encoding(sample, at_eof)
    text = sample.decode(encoding.codec, errors="replace")
    delimiter, records = sniff_delimiter(text, at_eof, default_delimiter)
    if records:
        check_column_count(len(records[0]), max_columns)
    # Classic-Mac line endings (Excel for Mac still writes them) are invisible to polars, which splits on "\n".
    cr_only = "\r" in text and "\n" not in text
    transcoded = os.path.join(workdir, "source.utf8.csv")
    try:
        text_pass, encoding, source = _read_all(path, encoding, delimiter, transcoded, cr_only, sample.isascii(),
                                                max_cells)
        if not any(name.strip() for name in text_pass.header) and not text_pass.rows:
            raise BadRequest("the file has no header and no rows", code="EMPTY_FILE")
        check_column_count(len(text_pass.header), max_columns)
        warnings = _encoding_warnings(encoding) + _ragged_warnings(text_pass, delimiter, ragged_row_tolerance)
        names, renames = normalise_names(text_pass.header)
        options = ScanOptions(source, delimiter, names, "utf8-lossy" if encoding.errors == "replace" else "utf8",
                              text_pass.long_rows > 0, text_pass.blank_lines > 0)
        warnings += sink_parquet(options, out_path, workdir)
    finally:
        if os.path.exists(transcoded):
            os.remove(transcoded)
    warnings += read_formatted_numbers(out_path, comma_delimited=delimiter == ",")
    return CsvConversion(delimiter, encoding.charset, renames + warnings)


def sniff_delimiter(text: str, at_eof: bool, default: str) -> tuple[str, list[list[str]]]:
    """Pick the delimiter whose field counts agree best over the first lines; return it and those records."""
    lines = list(islice(io.StringIO(text, newline=""), SNIFF_LINES + 1))
    if len(lines) > SNIFF_LINES or not at_eof:
        lines = lines[:-1]  # the last line may be cut short by the end of the sample
    best, best_score, best_records = default, (0.0, 1), _records(lines, default)
    for delimiter in sorted(DELIMITERS, key=lambda candidate: candidate != default):  # default wins ties
        records = _records(lines, delimiter)
        if not records or len(records[0]) < 2:
            continue
        width = len(records[0])
        score = (sum(len(record) == width for record in records) / len(records), width)
        if score > best_score:
            best, best_score, best_records = delimiter, score, records
    return best, best_records


def _records(lines: list[str], delimiter: str) -> list[list[str]]:
    try:
        return [record for record in csv.reader(lines, delimiter=delimiter) if record]
    except csv.Error:
        return []


def _read_all(path: str, encoding: TextEncoding, delimiter: str, transcoded: str, cr_only: bool,
              sample_is_ascii: bool, max_cells: int) -> tuple[_TextPass, TextEncoding, str]:
    """Run the whole-file pass, retrying with a fallback encoding when a later byte does not decode."""
    while True:
        target = None if encoding.is_utf8 and not cr_only else transcoded
        try:
            return _count_fields(path, encoding, delimiter, target, cr_only, max_cells), encoding, target or path
        except UnicodeDecodeError as exc:
            next_encoding = fallback_encoding(encoding, sample_is_ascii)
            if next_encoding is None:
                raise BadRequest(f"the file is not valid {encoding.label} text: {exc}", code="ENCODING") from exc
            encoding = next_encoding


def _count_fields(path: str, encoding: TextEncoding, delimiter: str, target: str | None,
                  cr_only: bool, max_cells: int) -> _TextPass:
    # Process-wide, but raising the limit only lets long legitimate cells through.
    csv.field_size_limit(max(csv.field_size_limit(), _FIELD_LIMIT))
    with open(path, "rb") as raw, (open(target, "w", encoding="utf-8", newline="") if target else nullcontext()) as out:
        text = io.TextIOWrapper(raw, encoding=encoding.codec, errors=encoding.errors, newline="")
        reader = csv.reader(_checked_lines(text, out, cr_only), delimiter=delimiter)
        try:
            header = next((record for record in reader if record), [])
            result = _TextPass(header)
            max_rows = max_cells // max(len(header), 1)
            for record in reader:
                _tally(result, record, reader.line_num)
                if result.rows > max_rows:  # stop reading at the first row past the budget
                    check_cells(result.rows, len(header), max_cells)
        except csv.Error as exc:
            raise BadRequest(f"line {reader.line_num}: {exc} (an unclosed quote?)", code="CORRUPT_FILE") from exc
    return result


def _tally(result: _TextPass, record: list[str], line: int) -> None:
    count, width = len(record), len(result.header)
    if count == 0:
        result.blank_lines += 1
        return
    result.rows += 1
    if count < width:
        result.short_rows += 1
    elif count > width:
        result.long_rows += 1
        if len(result.long_examples) < _EXAMPLES:
            result.long_examples.append((line, count))


def _checked_lines(lines: Iterable[str], out: TextIO | None, cr_only: bool) -> Iterator[str]:
    for number, line in enumerate(lines, 1):
        if "\x00" in line:
            raise BadRequest(f"line {number} contains a NUL byte: the file looks like binary data, not text",
                             code="ENCODING")
        if out is not None:
            out.write(line[:-1] + "\n" if cr_only and line.endswith("\r") else line)
        yield line


def _encoding_warnings(encoding: TextEncoding) -> list[str]:
    warnings = [] if encoding.is_utf8 else [f"encoding {encoding.label}, converted to UTF-8"]
    if encoding.errors == "replace":
        warnings.append(f"bytes that are not valid {encoding.label} were replaced with U+FFFD")
    return warnings


def _ragged_warnings(text_pass: _TextPass, delimiter: str, tolerance: float) -> list[str]:
    width, long_rows = len(text_pass.header), text_pass.long_rows
    examples = ", ".join(f"line {line} has {count}" for line, count in text_pass.long_examples)
    if long_rows > tolerance * max(text_pass.rows, 1):
        raise BadRequest(
            f"{long_rows:,} of {text_pass.rows:,} rows have more fields than the {width}-field header "
            f"({examples}); at most {tolerance:.1%} may. Quote values that contain {_DELIMITER_NAMES[delimiter]}.",
            code="RAGGED_ROWS",
            details={"expected_fields": width, "ragged_rows": long_rows, "rows": text_pass.rows,
                     "examples": [{"line": line, "fields": count} for line, count in text_pass.long_examples]})
    warnings = []
    if long_rows:
        warnings.append(f"{long_rows:,} ragged rows truncated to the {width}-field header ({examples})")
    if text_pass.short_rows:
        warnings.append(f"{text_pass.short_rows:,} short rows padded with nulls to {width} fields")
    if text_pass.blank_lines:
        warnings.append(f"{text_pass.blank_lines:,} blank lines skipped")
    return warnings

