"""The download formats: what each writes for every kind of value DuckDB returns, read back by other readers
(Polars, fastexcel, openpyxl, PyArrow), and the limits of the XLSX format refused in words."""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile

import duckdb
import openpyxl
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from common.analysis import xlsx_writer
from common.analysis.export_formats import FORMATS, ROW_GROUP_ROWS, download_format, open_writer
from common.analysis.export_text import as_text
from common.errors import BadRequest, PayloadTooLarge

EVERY_KIND = """SELECT 7::INT AS i, 9007199254740993::BIGINT AS big, 1.5::DOUBLE AS d, 'nan'::DOUBLE AS nan,
 1.25::DECIMAL(10, 2) AS price, 'North' AS s, DATE '2024-02-29' AS day, TIMESTAMP '2024-01-02 03:04:05.5' AS at,
 TIMESTAMPTZ '2024-01-02 03:04:05+02' AS at_tz, TIME '03:04:05' AS t, true AS flag, [1, 2] AS items,
 {'a': 1} AS parts, 'ab'::BLOB AS raw, INTERVAL '1 month 3 days 04:05:06.5' AS gap, 'x'::ENUM('x', 'y') AS e,
 NULL::INT AS nothing, TIMESTAMP_NS '2024-01-01 00:00:00.123456789' AS at_ns"""


def written(fmt: str, sql: str, batch_rows: int = 1000) -> bytes:
    """Run ``sql`` in DuckDB and write its rows as ``fmt``, as a download does, batch by batch."""
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    reader = connection.sql(sql).to_arrow_reader(batch_rows)
    out = io.BytesIO()
    writer = open_writer(fmt, out, reader.schema)
    for batch in reader:
        writer.write(batch)
    writer.close()
    return out.getvalue()


def test_csv_writes_flat_values_as_polars_does_and_the_rest_as_text():
    text = written("csv", EVERY_KIND).decode()
    header, row = text.splitlines()
    assert header == "i,big,d,nan,price,s,day,at,at_tz,t,flag,items,parts,raw,gap,e,nothing,at_ns"
    assert row == ('7,9007199254740993,1.5,NaN,1.25,North,2024-02-29,2024-01-02T03:04:05.500000,'
                   '2024-01-02T01:04:05.000000+0000,03:04:05.000000000,true,"[1, 2]","{""a"": 1}",YWI=,'
                   'P1M3DT4H5M6.5S,x,,2024-01-01T00:00:00.123456789')


def test_csv_of_no_rows_still_has_its_header():
    assert written("csv", "SELECT 1 AS a, 'x' AS b WHERE false") == b"a,b\n"


def test_parquet_keeps_every_type_it_has_and_writes_intervals_as_text():
    table = pq.read_table(io.BytesIO(written("parquet", EVERY_KIND)))
    types = dict(zip(table.schema.names, table.schema.types, strict=True))
    assert types["big"] == pa.int64() and types["price"] == pa.decimal128(10, 2)
    assert types["day"] == pa.date32() and types["at_tz"] == pa.timestamp("us", tz="UTC")
    assert pa.types.is_list(types["items"]) and pa.types.is_struct(types["parts"]) and types["raw"] == pa.binary()
    assert types["gap"] == pa.string() and table.column("gap").to_pylist() == ["P1M3DT4H5M6.5S"]
    assert table.column("items").to_pylist() == [[1, 2]] and types["at_ns"] == pa.timestamp("ns")


def test_parquet_row_groups_are_large_whatever_the_batches():
    data = written("parquet", f"SELECT range AS n FROM range({ROW_GROUP_ROWS * 2 + 5})", batch_rows=2048)
    metadata = pq.ParquetFile(io.BytesIO(data)).metadata
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == \
        [ROW_GROUP_ROWS, ROW_GROUP_ROWS, 5]


def test_xlsx_cells_are_typed_as_excel_types():
    data = written("xlsx", EVERY_KIND)
    frame = pl.read_excel(io.BytesIO(data))  # fastexcel (calamine)
    row = frame.row(0, named=True)
    assert frame.schema["i"].is_integer() and row["i"] == 7
    assert row["big"] == "9007199254740993"  # past 2^53 Excel would round it: kept as text
    assert frame.schema["d"] == pl.Float64 and row["nan"] is None  # NaN: empty, as the JSON API gives null
    assert row["price"] == 1.25 and row["s"] == "North" and row["flag"] is True
    assert frame.schema["day"] == pl.Date and row["day"] == dt.date(2024, 2, 29)
    assert row["at"] == dt.datetime(2024, 1, 2, 3, 4, 5, 500000)
    assert row["at_tz"] == dt.datetime(2024, 1, 2, 1, 4, 5)  # in UTC
    assert row["items"] == "[1, 2]" and row["parts"] == '{"a": 1}' and row["raw"] == "YWI=" and row["e"] == "x"
    assert row["gap"] == "P1M3DT4H5M6.5S" and row["nothing"] is None
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    assert sheet.title == "Result" and sheet.freeze_panes == "A2" and sheet.auto_filter.ref == "A1:R2"
    assert sheet["A1"].font.b and sheet["G2"].number_format == "yyyy\\-mm\\-dd"
    assert sheet["J2"].value == dt.time(3, 4, 5)


def test_xlsx_text_survives_escaping_and_excels_own_escapes():
    texts = ["a & b < c > d", "_x0041_ stays", "bell\x07 and nul\x00", "  padded  ", "line\nbreak", "Zürich 東京 🙂"]
    values = ", ".join("'" + text.replace("'", "''").replace("\x07", "' || chr(7) || '").replace(
        "\x00", "' || chr(0) || '") + "'" for text in texts)
    frame = pl.read_excel(io.BytesIO(written("xlsx", f"SELECT unnest([{values}]) AS text")))
    assert frame["text"].to_list() == texts


def test_xlsx_dates_use_excels_serial_numbers_and_text_before_1900():
    data = written("xlsx", "SELECT unnest([DATE '1900-01-01', DATE '1900-02-28', DATE '1900-03-01', "
                           "DATE '2024-01-01', DATE '1899-12-31']) AS day")
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        sheet = package.read("xl/worksheets/sheet1.xml").decode()
    # Excel's serials: 1900-01-01 is 1, and it counts a 29 February 1900 that never was (60).
    assert re.findall(r'<c r="A\d+" s="2"><v>(\d+)</v>', sheet) == ["1", "59", "61", "45292"]
    assert pl.read_excel(io.BytesIO(data))["day"].to_list()[-1] == "1899-12-31"  # before Excel's dates: text


def test_xlsx_is_written_as_it_goes_not_at_the_end():
    connection = duckdb.connect()
    reader = connection.sql("SELECT range AS n, 'row ' || range AS label FROM range(200000)").to_arrow_reader(2048)
    out = io.BytesIO()
    writer = open_writer("xlsx", out, reader.schema)
    sizes = []
    for batch in reader:
        writer.write(batch)
        sizes.append(writer.size())
    writer.close()
    assert sizes == sorted(sizes) and sizes[len(sizes) // 2] > 0.3 * len(out.getvalue())
    assert sizes[-1] > 0.9 * len(out.getvalue())  # nothing held back to be written at the close


def test_xlsx_refuses_what_excel_cannot_hold(monkeypatch):
    with pytest.raises(PayloadTooLarge) as long_cell:
        written("xlsx", "SELECT repeat('x', 32768) AS s")
    assert long_cell.value.code == "XLSX_CELL_TOO_LONG" and "CSV or Parquet" in long_cell.value.message
    assert written("xlsx", "SELECT repeat('x', 32767) AS s")  # exactly a full cell

    monkeypatch.setattr(xlsx_writer, "MAX_DATA_ROWS", 10)
    assert pl.read_excel(io.BytesIO(written("xlsx", "SELECT range AS n FROM range(10)"))).height == 10
    with pytest.raises(PayloadTooLarge) as too_many:
        written("xlsx", "SELECT range AS n FROM range(11)")
    assert too_many.value.code == "RESULT_TOO_LARGE" and too_many.value.details["max_rows"] == 10

    monkeypatch.setattr(xlsx_writer, "MAX_COLUMNS", 3)
    with pytest.raises(PayloadTooLarge, match="at most 3 columns"):
        written("xlsx", "SELECT 1 AS a, 2 AS b, 3 AS c, 4 AS d")


@pytest.mark.parametrize(("value", "text"), [
    (dt.timedelta(days=2, hours=3), "P2DT3H"), (dt.timedelta(0), "PT0S"), (dt.timedelta(seconds=-90), "-PT1M30S"),
    (dt.timedelta(microseconds=1500), "PT0.0015S"), (pa.MonthDayNano([-1, 2, -3_000_000_000]), "P-1M2DT-3S"),
    (b"\x00\xff", "AP8="), ({"k": [1, dt.date(2024, 1, 1)]}, '{"k": [1, "2024-01-01"]}'), (None, None),
])
def test_values_written_as_text(value, text):
    assert as_text(value) == text


def test_a_format_is_checked_against_the_accepted_ones():
    assert download_format(None) == "csv" and download_format("") == "csv" and download_format("xlsx") == "xlsx"
    assert download_format(None, default="json", accepted=("json", *FORMATS)) == "json"
    with pytest.raises(BadRequest) as refused:
        download_format("xls")
    assert refused.value.code == "UNSUPPORTED_FORMAT" and refused.value.details == {"accepted": list(FORMATS)}
