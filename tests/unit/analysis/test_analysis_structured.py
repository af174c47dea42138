"""Excel, JSON and Parquet uploads: every sheet loads, nested values become JSON text, damage is a 400."""

import datetime
import io
import json
import zipfile

import pytest

from common.errors import BadRequest


def _xlsx(sheets: dict[str, list[list]]) -> bytes:
    import openpyxl

    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for title, table in sheets.items():
        sheet = workbook.create_sheet(title)
        for record in table:
            sheet.append(record)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _parquet(frame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


def test_every_non_empty_sheet_of_an_xlsx_is_a_table(upload, rows):
    content = _xlsx({
        "Sales": [["region", "amount", "when"], ["north", 10.5, datetime.datetime(2024, 1, 2)],
                  ["south", 20, datetime.datetime(2024, 3, 4)]],
        "Blank": [],
        "Costs": [["item", "cost"], ["rent", 1200], ["power", 80]],
    })

    result = upload("book.xlsx", content)

    assert (result.format, [table.name for table in result.tables]) == ("xlsx", ["book.xlsx#Sales", "book.xlsx#Costs"])
    assert [table.sheet for table in result.tables] == ["Sales", "Costs"]
    # calamine reads midnight-only datetime cells as dates.
    assert rows(result, 0) == [{"region": "north", "amount": 10.5, "when": datetime.date(2024, 1, 2)},
                               {"region": "south", "amount": 20.0, "when": datetime.date(2024, 3, 4)}]
    assert rows(result, 1) == [{"item": "rent", "cost": 1200}, {"item": "power", "cost": 80}]
    assert "sheet 'Blank' has no data rows; skipped" in result.warnings


def test_a_workbook_whose_sheets_are_all_empty_is_refused(upload):
    with pytest.raises(BadRequest) as caught:
        upload("empty.xlsx", _xlsx({"One": [], "Two": []}))

    assert caught.value.code == "EMPTY_FILE"


def test_blank_and_repeated_excel_headers_are_named(upload):
    result = upload("h.xlsx", _xlsx({"S": [["id", None, "ID "], [1, 2, 3]]}))

    assert [column["name"] for column in result.tables[0].columns] == ["id", "column_2", "ID_2"]
    assert "sheet 'S': column '' renamed to 'column_2'" in result.warnings


def test_a_late_text_cell_in_a_numeric_excel_column_does_not_fail(upload, rows):
    table = [["n", "m"]] + [[i, i] for i in range(300)] + [["n/a", 1], [None, 2]]

    result = upload("late.xlsx", _xlsx({"S": table}))

    assert rows(result)[-3:] == [{"n": "299", "m": 299}, {"n": "n/a", "m": 1}, {"n": None, "m": 2}]
    assert result.tables[0].rows == 302
    assert "sheet 'S': column 'n' kept as text: some cells are not Int64" in result.warnings


def test_an_xls_workbook_loads(upload, rows, tmp_path):
    import xlwt

    book = xlwt.Workbook()
    sheet = book.add_sheet("Legacy")
    for column, value in enumerate(["name", "qty"]):
        sheet.write(0, column, value)
    sheet.write(1, 0, "bolts")
    sheet.write(1, 1, 40)
    book.save(str(tmp_path / "legacy.xls"))

    result = upload("legacy.xls", (tmp_path / "legacy.xls").read_bytes())

    assert [table.name for table in result.tables] == ["legacy.xls#Legacy"]
    assert rows(result) == [{"name": "bolts", "qty": 40.0}]


@pytest.mark.parametrize("damage", ["truncated", "bad_xml"])
def test_a_corrupt_xlsx_is_a_400(upload, damage):
    content = _xlsx({"S": [["a"], [1]]})
    if damage == "truncated":
        content = content[: len(content) // 2]
    else:
        source, buffer = zipfile.ZipFile(io.BytesIO(content)), io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for name in source.namelist():
                broken = name.startswith("xl/worksheets/")
                archive.writestr(name, b"<<not xml" if broken else source.read(name))
        content = buffer.getvalue()

    with pytest.raises(BadRequest) as caught:
        upload("bad.xlsx", content)

    assert caught.value.code == "CORRUPT_FILE"


def test_a_json_array_of_objects_loads(upload, rows):
    content = json.dumps([{"id": 1, "name": "a", "price": 1.5}, {"id": 2, "name": "b", "price": None}])

    result = upload("items.json", content)

    assert result.format == "json"
    assert rows(result) == [{"id": 1, "name": "a", "price": 1.5}, {"id": 2, "name": "b", "price": None}]


def test_nested_json_values_become_json_text(upload, rows):
    content = json.dumps([{"id": 1, "address": {"city": "Oslo", "zip": [1, 2]}, "tags": ["x", "y"]},
                          {"id": 2, "address": None, "tags": []}])

    result = upload("nested.json", content)

    table = rows(result)
    assert json.loads(table[0]["address"]) == {"city": "Oslo", "zip": [1, 2]}
    assert json.loads(table[0]["tags"]) == ["x", "y"]
    assert (table[1]["address"], json.loads(table[1]["tags"])) == (None, [])
    assert {column["dtype"] for column in result.tables[0].columns} == {"Int64", "String"}


def test_records_under_a_single_key_are_the_rows(upload, rows):
    result = upload("wrapped.json", json.dumps({"data": [{"a": 1}, {"a": 2}], "count": 2}))

    assert rows(result) == [{"a": 1}, {"a": 2}]


def test_a_json_array_of_plain_values_is_refused_with_its_shape(upload):
    with pytest.raises(BadRequest) as caught:
        upload("values.json", "[1, 2, 3]")

    assert caught.value.code == "JSON_SHAPE"


def test_truncated_json_is_corrupt(upload):
    with pytest.raises(BadRequest) as caught:
        upload("cut.json", '[{"a": 1}, {"a": ')

    assert caught.value.code == "CORRUPT_FILE"


@pytest.mark.parametrize("filename", ["events.ndjson", "events.jsonl", "events.json"])
def test_ndjson_loads_whatever_its_extension(upload, rows, filename):
    content = '{"id": 1, "meta": {"k": "v"}}\n{"id": 2, "meta": null}\n{"id": 3, "meta": {"k": "w"}}\n'

    result = upload(filename, content)

    assert result.format == "ndjson"
    assert [(row["id"], row["meta"]) for row in rows(result)] == [(1, '{"k":"v"}'), (2, None), (3, '{"k":"w"}')]


def test_an_ndjson_key_changing_type_late_becomes_text(upload, rows):
    content = "".join(json.dumps({"v": i}) + "\n" for i in range(500)) + '{"v": "n/a"}\n'

    result = upload("late.ndjson", content)

    assert rows(result)[-1] == {"v": "n/a"}


def test_a_parquet_upload_round_trips_with_normalised_names(upload, rows):
    import polars as pl

    frame = pl.DataFrame({"Id": [1, 2], "id": [3, 4], "when": [datetime.date(2024, 1, 1), None],
                          "tags": [["a"], ["b", "c"]]})

    result = upload("t.parquet", _parquet(frame))

    assert [column["name"] for column in result.tables[0].columns] == ["Id", "id_2", "when", "tags"]
    assert rows(result) == [{"Id": 1, "id_2": 3, "when": datetime.date(2024, 1, 1), "tags": '["a"]'},
                            {"Id": 2, "id_2": 4, "when": None, "tags": '["b","c"]'}]


def test_a_truncated_parquet_is_corrupt(upload):
    import polars as pl

    content = _parquet(pl.DataFrame({"a": list(range(1000))}))

    with pytest.raises(BadRequest) as caught:
        upload("cut.parquet", content[:-100])

    assert caught.value.code == "CORRUPT_FILE"


def test_a_parquet_without_columns_is_empty(upload):
    import polars as pl

    with pytest.raises(BadRequest) as caught:
        upload("none.parquet", _parquet(pl.DataFrame()))

    assert caught.value.code == "EMPTY_FILE"


def test_a_parquet_with_columns_but_no_rows_is_accepted_with_a_warning(upload):
    import polars as pl

    result = upload("schema.parquet", _parquet(pl.DataFrame({"a": [], "b": []}, schema={"a": pl.Int64,
                                                                                         "b": pl.String})))

    assert result.tables[0].rows == 0 and [c["name"] for c in result.tables[0].columns] == ["a", "b"]
    assert result.warnings == ["no rows: 'schema.parquet' has column names but no data"]


def test_a_rust_panic_inside_the_parser_is_a_400(upload, monkeypatch):
    import polars as pl

    class PanicException(BaseException):  # what pyo3 raises when calamine or polars panics
        pass

    def panic(*args, **kwargs):
        raise PanicException("slice index starts at 8192 but ends at 7811")

    monkeypatch.setattr(pl, "read_excel", panic)

    with pytest.raises(BadRequest) as caught:
        upload("book.xlsx", _xlsx({"S": [["a"], [1]]}))

    assert caught.value.code == "CORRUPT_FILE"
    assert "slice index" in caught.value.message
