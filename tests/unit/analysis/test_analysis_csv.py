"""Delimited text uploads: delimiters, encodings, quoting, ragged rows, column names and late type changes."""

import dataclasses
import datetime
import os

import pytest

from common.errors import BadRequest

SALES = [["region", "amount", "when"], ["north", "10", "2024-01-02"], ["south", "20", "2024-03-04"]]


def _text(delimiter: str, table=SALES) -> str:
    return "".join(delimiter.join(record) + "\n" for record in table)


@pytest.mark.parametrize(("delimiter", "filename"), [(",", "s.csv"), (";", "s.csv"), ("|", "s.csv"),
                                                     ("\t", "s.csv"), ("\t", "s.tsv"), (";", "s.txt")])
def test_every_delimiter_loads_as_real_columns(upload, rows, delimiter, filename):
    result = upload(filename, _text(delimiter))

    assert result.kind == "table"
    assert [column["name"] for column in result.tables[0].columns] == ["region", "amount", "when"]
    assert rows(result) == [{"region": "north", "amount": 10, "when": datetime.date(2024, 1, 2)},
                            {"region": "south", "amount": 20, "when": datetime.date(2024, 3, 4)}]
    assert result.tables[0].columns[1]["dtype"] == "Int64"


def test_a_tab_separated_txt_reports_tsv(upload):
    assert upload("s.txt", _text("\t")).format == "tsv"
    assert upload("s.txt", _text(",")).format == "csv"


def test_the_delimiter_is_chosen_by_consistency_not_by_order(upload, rows):
    # Commas inside values would split rows unevenly; the semicolons split every row into three fields.
    text = "name;note;price\nA;red, large;1\nB;blue;2\nC;x, y, z;3\n"

    result = upload("s.csv", text)

    assert rows(result)[2] == {"name": "C", "note": "x, y, z", "price": 3}


def test_semicolon_file_with_decimal_commas_reads_numbers(upload, rows):
    result = upload("s.csv", "item;price\nA;1,5\nB;2,25\n")

    assert [row["price"] for row in rows(result)] == [1.5, 2.25]
    assert result.warnings == ["numbers written like 1234,56 read as 1234.56 in column(s) 'price'"]


def test_quoted_fields_keep_delimiters_newlines_and_quotes(upload, rows):
    text = 'id,comment\n1,"a, b; c"\n2,"line one\nline two"\n3,"she said ""hi"""\n'

    result = upload("q.csv", text)

    assert [row["comment"] for row in rows(result)] == ["a, b; c", "line one\nline two", 'she said "hi"']
    assert result.warnings == []


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-be", "cp1252", "latin-1"])
def test_encodings_are_detected_and_values_survive(upload, rows, encoding):
    text = "name,city\nJosé,München\nRené,Zürich\nHélène,Besançon\n"

    result = upload("e.csv", text, encoding=encoding)

    assert [column["name"] for column in result.tables[0].columns] == ["name", "city"]
    assert [row["city"] for row in rows(result)] == ["München", "Zürich", "Besançon"]


def test_a_legacy_encoding_is_reported_and_transcoded_away(upload, tmp_path):
    result = upload("e.csv", "name\nJosé\n", encoding="latin-1")

    assert any(warning.startswith("encoding cp1252") for warning in result.warnings)
    assert not os.path.exists(tmp_path / "work" / "source.utf8.csv")


def test_a_latin1_byte_after_an_ascii_sample_switches_to_cp1252(upload, rows):
    # The first megabyte is plain ASCII, so only the full pass meets the é.
    text = "id,name\n" + "".join(f"{i},plain\n" for i in range(120_000)) + "120000,José\n"

    result = upload("late.csv", text, encoding="latin-1")

    assert rows(result)[-1] == {"id": 120000, "name": "José"}
    assert "encoding cp1252, converted to UTF-8" in result.warnings


def test_utf8_with_one_broken_byte_keeps_the_rest(upload, rows):
    content = "name\nJosé\nZürich\n".encode() + b"caf\xe9\n"

    result = upload("broken.csv", content)

    assert [row["name"] for row in rows(result)] == ["José", "Zürich", "caf\ufffd"]
    assert any("U+FFFD" in warning for warning in result.warnings)


def test_classic_mac_line_endings_split_rows(upload, rows):
    result = upload("mac.csv", "a,b\r1,2\r3,4\r")

    assert rows(result) == [{"a": 1, "b": 2}, {"a": 3, "b": 4}]


def test_ragged_rows_within_tolerance_are_truncated_and_padded(upload, rows):
    text = "a,b,c\n" + "1,2,3\n" * 18 + "4,5,6,7\n" + "8,9\n"

    result = upload("r.csv", text)

    table = rows(result)
    assert table[18] == {"a": 4, "b": 5, "c": 6}
    assert table[19] == {"a": 8, "b": 9, "c": None}
    assert "1 ragged rows truncated to the 3-field header (line 20 has 4)" in result.warnings
    assert "1 short rows padded with nulls to 3 fields" in result.warnings


def test_ragged_rows_over_tolerance_are_refused_with_line_numbers(upload):
    text = "a,b\n1,2\n3,4,5\n6,7\n8,9,10,11\n"

    with pytest.raises(BadRequest) as caught:
        upload("r.csv", text)

    assert caught.value.code == "RAGGED_ROWS"
    assert caught.value.details["examples"] == [{"line": 3, "fields": 3}, {"line": 5, "fields": 4}]
    assert caught.value.details["expected_fields"] == 2
    assert "line 3 has 3" in caught.value.message


def test_blank_lines_do_not_become_rows(upload, rows):
    result = upload("b.csv", "\na,b\n1,2\n\n3,4\n\n")

    assert rows(result) == [{"a": 1, "b": 2}, {"a": 3, "b": 4}]
    assert result.tables[0].rows == 2


def test_duplicate_empty_and_whitespace_names_are_renamed_with_warnings(upload, rows):
    result = upload("n.csv", " id ,Name,name,,\tNAME\x07,id_2\n1,2,3,4,5,6\n")

    names = [column["name"] for column in result.tables[0].columns]
    assert names == ["id", "Name", "name_2", "column_4", "NAME_3", "id_2"]
    assert rows(result) == [dict(zip(names, [1, 2, 3, 4, 5, 6], strict=True))]
    assert "column 'name' renamed to 'name_2'" in result.warnings
    assert "column '' renamed to 'column_4'" in result.warnings


def test_too_many_columns_is_refused_with_count_and_limit(upload, limits):
    narrow = dataclasses.replace(limits, max_columns=5)

    with pytest.raises(BadRequest) as caught:
        upload("wide.csv", ",".join(f"c{i}" for i in range(6)) + "\n" + ",".join("1" * 6) + "\n", narrow)

    assert caught.value.code == "TOO_MANY_COLUMNS"
    assert caught.value.details == {"columns": 6, "limit": 5}


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", b"\xef\xbb\xbf"])
def test_empty_files_are_refused(upload, content):
    with pytest.raises(BadRequest) as caught:
        upload("empty.csv", content)

    assert caught.value.code == "EMPTY_FILE"


def test_a_header_only_file_is_a_table_with_no_rows(upload):
    result = upload("h.csv", "a,b,c\n")

    assert result.tables[0].rows == 0
    assert [column["name"] for column in result.tables[0].columns] == ["a", "b", "c"]
    assert result.warnings == ["no rows: 'h.csv' has column names but no data"]


def test_binary_garbage_named_csv_is_a_content_mismatch(upload):
    with pytest.raises(BadRequest) as caught:
        upload("garbage.csv", bytes(range(256)) * 64)

    assert caught.value.code == "CONTENT_MISMATCH"
    assert "binary" in caught.value.message


def test_a_nul_byte_beyond_the_sniffed_head_is_an_encoding_error(upload):
    content = ("a,b\n" + "1,2\n" * 20_000).encode() + b"3,\x00\x01\n"

    with pytest.raises(BadRequest) as caught:
        upload("late-binary.csv", content)

    assert caught.value.code == "ENCODING"
    assert "line 20002" in caught.value.message


def test_a_late_value_of_another_type_widens_only_its_column(upload, rows):
    lines = ["id,amount,score,day"] + [f"{i},{i},{i}.5,2024-01-01" for i in range(12_000)]
    lines += ["12000,n/a,7.25,2024-01-02", "12001,5,8,2024-01-03", "12002,6,9.5,2024-01-04"]
    lines[11_000] = "10999,3.75,1.5,2024-01-01"  # a float after the inference window, in an integer column

    result = upload("late.csv", "\n".join(lines) + "\n")

    dtypes = {column["name"]: column["dtype"] for column in result.tables[0].columns}
    assert dtypes == {"id": "Int64", "amount": "String", "score": "Float64", "day": "Date"}
    assert rows(result)[-3:] == [
        {"id": 12000, "amount": "n/a", "score": 7.25, "day": datetime.date(2024, 1, 2)},
        {"id": 12001, "amount": "5", "score": 8.0, "day": datetime.date(2024, 1, 3)},
        {"id": 12002, "amount": "6", "score": 9.5, "day": datetime.date(2024, 1, 4)},
    ]
    assert any(warning.startswith("column 'amount' read as String") for warning in result.warnings)


def test_a_late_float_in_an_integer_column_becomes_float(upload, rows):
    text = "n\n" + "".join(f"{i}\n" for i in range(11_000)) + "2.5\n"

    result = upload("f.csv", text)

    assert result.tables[0].columns == [{"name": "n", "dtype": "Float64"}]
    assert rows(result)[-1] == {"n": 2.5}


def test_an_unclosed_quote_is_a_clear_400(upload):
    text = 'a,b\n1,"never closed\n' + "x" * (17 * 1024 * 1024) + "\n"

    with pytest.raises(BadRequest) as caught:
        upload("q.csv", text)

    assert caught.value.code == "CORRUPT_FILE"
    assert "unclosed quote" in caught.value.message


def test_types_are_real_and_the_preview_is_small(upload, limits):
    import polars as pl

    text = "i,f,b,d,t,s\n" + "".join(f"{n},{n}.5,{'true' if n % 2 else 'false'},2024-01-0{n % 9 + 1},"
                                     f"2024-01-01 10:00:0{n % 10},x{n}\n" for n in range(300))

    result = upload("types.csv", text)

    table = result.tables[0]
    assert [column["dtype"] for column in table.columns] == [
        "Int64", "Float64", "Boolean", "Date", "Datetime(time_unit='us', time_zone=None)", "String"]
    assert pl.read_parquet(table.preview_path).height == limits.preview_rows
    assert table.rows == 300


def test_quoting_polars_rejects_is_repaired_as_the_csv_module_reads_it(upload, rows):
    text = 'id,height,name\n1,5\'10",Ann\n2,"6\'1" ,Bob\n3,"5\'2""",Cy\n'

    result = upload("people.csv", text)

    assert rows(result) == [{"id": 1, "height": "5'10\"", "name": "Ann"},
                            {"id": 2, "height": "6'1 ", "name": "Bob"},
                            {"id": 3, "height": "5'2\"", "name": "Cy"}]
    assert any("quoting repaired" in warning for warning in result.warnings)


@pytest.mark.parametrize(("filename", "content"), [
    ("ids.csv", "order_id,amount\n123456789012345678901234,5\n7,6\n"),
    ("ids.json", '[{"order_id": 123456789012345678901234, "amount": 5}, {"order_id": 7, "amount": 6}]'),
])
def test_integers_beyond_64_bits_are_stored_so_the_sql_engine_can_scan_them(upload, filename, content):
    import decimal

    import pyarrow.dataset as ds

    # Polars reads them as 128-bit integers, which Arrow (the SQL engine's scan) cannot open.
    table = ds.dataset(upload(filename, content).tables[0].parquet_path, format="parquet").to_table()
    assert table.column("order_id").to_pylist() == [decimal.Decimal("123456789012345678901234"), 7]
    assert str(table.schema.field("amount").type) == "int64"
