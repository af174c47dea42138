"""Reads from the stored Parquet: JSON-safe previews, exports, profiles and column-name rules."""

import datetime
import decimal
import json
import math

import pytest

from common.analysis.columns import normalise_names
from common.analysis.profile import profile_table
from common.analysis.tables import export, json_safe_rows, json_safe_value, read_preview
from common.errors import BadRequest


@pytest.fixture
def table_path(tmp_path):
    import polars as pl

    frame = pl.DataFrame({
        "id": [1, 2, 3, 4],
        "price": [1.5, float("nan"), float("inf"), None],
        "day": [datetime.date(2024, 1, 1), datetime.date(2024, 2, 1), None, datetime.date(2023, 12, 31)],
        "at": [datetime.datetime(2024, 1, 1, 9, 30)] * 4,
        "amount": pl.Series([decimal.Decimal("1.10"), None, decimal.Decimal("2.25"), decimal.Decimal("0")],
                            dtype=pl.Decimal(10, 2)),
        "name": ["a", "b" * 200, "a", None],
        "ok": [True, False, True, None],
    })
    path = tmp_path / "t.parquet"
    frame.write_parquet(path)
    return str(path)


def test_json_safe_value_handles_what_polars_returns():
    assert json_safe_value(float("nan")) is None
    assert json_safe_value(float("-inf")) is None
    assert json_safe_value(datetime.datetime(2024, 1, 2, 3, 4)) == "2024-01-02T03:04:00"
    assert json_safe_value(datetime.timedelta(minutes=2)) == 120.0
    assert json_safe_value(decimal.Decimal("1.10")) == 1.1
    assert json_safe_value(decimal.Decimal("12345678901234567890.123")) == "12345678901234567890.123"
    assert json_safe_value(b"\x00\x01") == "AAE="
    assert json_safe_value({"k": [float("nan"), datetime.date(2024, 1, 1)]}) == {"k": [None, "2024-01-01"]}


def test_read_preview_is_json_safe_and_in_column_order(table_path):
    preview = read_preview(table_path, 2)

    assert [column["name"] for column in preview["columns"]] == ["id", "price", "day", "at", "amount", "name", "ok"]
    assert preview["columns"][4]["dtype"] == "Decimal(precision=10, scale=2)"
    assert preview["rows"][1] == {"id": 2, "price": None, "day": "2024-02-01", "at": "2024-01-01T09:30:00",
                                  "amount": None, "name": "b" * 200, "ok": False}
    assert list(preview["rows"][0]) == [column["name"] for column in preview["columns"]]
    json.dumps(preview, allow_nan=False)


def test_json_safe_rows_keeps_row_order():
    import polars as pl

    assert json_safe_rows(pl.DataFrame({"a": [2, 1], "b": [float("nan"), 0.5]})) == [{"a": 2, "b": None},
                                                                                     {"a": 1, "b": 0.5}]


def test_export_csv_json_and_parquet(table_path, tmp_path):
    import polars as pl

    for fmt in ("csv", "json", "parquet"):
        export(table_path, fmt, str(tmp_path / f"out.{fmt}"))

    assert (tmp_path / "out.csv").read_text().splitlines()[0] == "id,price,day,at,amount,name,ok"
    records = json.loads((tmp_path / "out.json").read_text())
    assert [record["id"] for record in records] == [1, 2, 3, 4]
    assert records[0]["day"] == "2024-01-01" and records[1]["price"] is None
    assert pl.read_parquet(tmp_path / "out.parquet").equals(pl.read_parquet(table_path))
    assert not list(tmp_path.glob("*.part"))


def test_export_of_an_empty_table_is_an_empty_json_array(tmp_path):
    import polars as pl

    pl.DataFrame({"a": []}, schema={"a": pl.Int64}).write_parquet(tmp_path / "empty.parquet")

    export(str(tmp_path / "empty.parquet"), "json", str(tmp_path / "out.json"))

    assert json.loads((tmp_path / "out.json").read_text()) == []


def test_export_refuses_an_unknown_format(table_path, tmp_path):
    with pytest.raises(BadRequest) as caught:
        export(table_path, "xml", str(tmp_path / "out.xml"))

    assert caught.value.code == "UNSUPPORTED_FORMAT"


def test_profile_statistics_per_type(table_path):
    profile = profile_table(table_path, table_path)
    columns = {column["name"]: column for column in profile["columns"]}

    assert profile["rows"] == 4
    assert columns["id"] | {"std": None} == {"name": "id", "dtype": "Int64", "null_count": 0, "min": 1, "max": 4,
                                             "mean": 2.5, "std": None, "samples": [1, 2, 3, 4]}
    assert math.isclose(columns["id"]["std"], 1.2909944, rel_tol=1e-6)
    assert (columns["day"]["min"], columns["day"]["max"], columns["day"]["null_count"]) == (
        "2023-12-31", "2024-02-01", 1)
    assert (columns["name"]["n_unique"], columns["name"]["max_length"]) == (2, 200)
    assert columns["name"]["samples"] == ["a", "b" * 80]
    assert (columns["amount"]["min"], columns["amount"]["max"]) == (0.0, 2.25)
    assert columns["ok"]["true_count"] == 2
    assert columns["price"]["samples"] == [1.5]
    json.dumps(profile, allow_nan=False)


@pytest.mark.parametrize(("raw", "expected"), [
    (["a", "A", "a"], ["a", "A_2", "a_3"]),
    (["a", "a", "a_2"], ["a", "a_3", "a_2"]),
    (["", " ", "\ufeffid\u200b"], ["column_1", "column_2", "id"]),
    (["x\ty", "line\nbreak"], ["xy", "linebreak"]),
    (["column_2", ""], ["column_2", "column_2_2"]),
])
def test_normalise_names(raw, expected):
    assert normalise_names(raw)[0] == expected


def test_rename_warnings_are_capped():
    names, warnings = normalise_names(["x"] * 40)

    assert len(set(name.lower() for name in names)) == 40
    assert len(warnings) == 21 and warnings[-1] == "19 more columns renamed"
