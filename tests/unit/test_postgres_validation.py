"""Postgres request validation before any I/O: connection fields, names, identifiers, rows and types."""

from __future__ import annotations

import polars as pl
import pytest

from common import errors
from common.services.postgres.connections import check_identifier, check_name, parse_params
from common.services.postgres.frames import frame_from_rows, sql_type

BASE = {"host": "db.example.com", "port": 5432, "dbname": "app", "user": "ro", "password": "secret"}


@pytest.mark.parametrize("port,expected", [(5432, 5432), ("5432", 5432), (" 6543 ", 6543), (1, 1), ("65535", 65535)])
def test_port_is_an_int_or_a_numeric_string(port, expected):
    assert parse_params({**BASE, "port": port}).port == expected


def test_defaults_are_require_and_public():
    params = parse_params({key: value for key, value in BASE.items() if key != "port"})
    assert (params.port, params.sslmode, params.schema) == (5432, "require", "public")


@pytest.mark.parametrize("change", [
    {"port": 0}, {"port": 65536}, {"port": "54x"}, {"port": True}, {"port": 5432.5}, {"port": "-1"}, {"port": "٥٤"},
    {"host": "db example.com"}, {"host": "db/evil"}, {"host": "user:pw@db"}, {"host": 12}, {"host": "-oops"},
    {"host": "x" * 254}, {"host": None}, {"dbname": ""}, {"dbname": "a\x00b"}, {"dbname": 5}, {"user": "x" * 64},
    {"user": "a\nb"}, {"password": 123}, {"password": "a\x00b"}, {"password": "x" * 1025},
    {"sslmode": "prefer"}, {"sslmode": "REQUIRE"}, {"schema": "x" * 64}, {"schema": "a\tb"}, {"schema": 3},
    {"pasword": "typo"},
])
def test_malformed_connection_fields_are_bad_requests(change):
    with pytest.raises(errors.BadRequest):
        parse_params({**BASE, **change})


@pytest.mark.parametrize("name", ["main", "Sales DB", "ünïcödé", "a" * 63, "select", 'quo"te'])
def test_valid_connection_names(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "a" * 64, " lead", "trail ", "a/b", "a:b", "tab\tname", "..", "connections",
                                  "Table", "query", "*", None, 5])
def test_invalid_connection_names(name):
    with pytest.raises(errors.BadRequest):
        check_name(name)


def test_identifiers_are_limited_to_63_utf8_bytes():
    assert check_identifier("é" * 31, "table name")
    with pytest.raises(errors.BadRequest, match="63 bytes"):
        check_identifier("é" * 32, "table name")
    with pytest.raises(errors.BadRequest):
        check_identifier("bad\x01name", "table name")


def test_rows_infer_types_from_every_row():
    frame = frame_from_rows([{"n": 1, "when": "x"}, {"n": 2.5}, {"flag": True}])
    assert frame.columns == ["n", "when", "flag"]
    assert frame.schema["n"] == pl.Float64 and frame.height == 3


@pytest.mark.parametrize("rows", [None, [], {}, "rows", [1, 2], [{}], [{"ok": 1}, []], [{"bad\x00name": 1}],
                                  [{"x" * 64: 1}]])
def test_bad_rows_are_bad_requests(rows):
    with pytest.raises(errors.BadRequest):
        frame_from_rows(rows)


@pytest.mark.parametrize("dtype,expected", [
    (pl.Int8, "SMALLINT"), (pl.Int32, "INTEGER"), (pl.Int64, "BIGINT"), (pl.UInt32, "BIGINT"),
    (pl.UInt64, "NUMERIC(39, 0)"), (pl.Float32, "REAL"), (pl.Float64, "DOUBLE PRECISION"), (pl.Boolean, "BOOLEAN"),
    (pl.String, "TEXT"), (pl.Null, "TEXT"), (pl.Date, "DATE"), (pl.Datetime("us"), "TIMESTAMP WITHOUT TIME ZONE"),
    (pl.Datetime("us", "UTC"), "TIMESTAMP WITH TIME ZONE"), (pl.Time, "TIME WITHOUT TIME ZONE"),
    (pl.Duration("us"), "INTERVAL"), (pl.Decimal(12, 2), "NUMERIC(12, 2)"), (pl.Binary, "BYTEA"),
    (pl.List(pl.Int64), "JSONB"), (pl.Struct({"a": pl.Int64}), "JSONB"), (pl.Categorical(), "TEXT"),
])
def test_polars_types_map_to_postgres_types_that_hold_every_value(dtype, expected):
    from sqlalchemy.dialects import postgresql

    assert sql_type(dtype).compile(dialect=postgresql.dialect()) == expected

