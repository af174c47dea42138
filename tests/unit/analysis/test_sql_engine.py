"""The DuckDB engine: results, row caps, limits that hold, and a sandbox that holds even without the policy."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import time

import duckdb
import polars as pl
import pyarrow.dataset
import pytest

from common.analysis.sql_engine import (
    SqlError,
    SqlLimits,
    SqlTimeout,
    SqlTooExpensive,
    connect,
    run_sql,
)
from common.analysis.sql_policy import SqlRejected

LIMITS = SqlLimits(memory_limit_mb=256, threads=2, timeout_seconds=20, max_rows=100)


@pytest.fixture
def tables(tmp_path) -> dict[str, str]:
    sales = pl.DataFrame({
        "Region": ["North", "South", "North", "East", "South"],
        "Day": [datetime.date(2024, 1, day) for day in (1, 1, 2, 2, 3)],
        "Revenue": [120.5, 80.0, 130.0, float("nan"), 40.0],
        "Units": [3, 5, 7, 1, 2],
        "Customer Name": ["Ann", "Bo", "Cy", "Di", "Ed"],
    })
    stock = pl.DataFrame({"Region": ["North", "South"], "warehouse": ["N1", "S1"]})
    paths = {"sales": str(tmp_path / "sales.parquet"), "stock": str(tmp_path / "stock.parquet")}
    sales.write_parquet(paths["sales"])
    stock.write_parquet(paths["stock"])
    return paths


def test_a_query_returns_typed_columns_and_json_safe_rows(tables):
    sql = ('SELECT s."Region", w.warehouse, SUM(s."Units") AS units, MIN(s."Day") AS first_day '
           'FROM sales AS s JOIN stock AS w USING ("Region") GROUP BY ALL ORDER BY 1')
    result = run_sql(sql, tables, LIMITS)
    assert result.columns == [{"name": "Region", "dtype": "VARCHAR"}, {"name": "warehouse", "dtype": "VARCHAR"},
                              {"name": "units", "dtype": "HUGEINT"}, {"name": "first_day", "dtype": "DATE"}]
    assert result.rows == [{"Region": "North", "warehouse": "N1", "units": 10, "first_day": "2024-01-01"},
                           {"Region": "South", "warehouse": "S1", "units": 7, "first_day": "2024-01-01"}]
    assert (result.row_count, result.truncated, result.sql) == (2, False, sql)
    assert result.elapsed_ms > 0


def test_values_json_cannot_carry_become_json_safe(tables):
    result = run_sql('SELECT "Revenue", INTERVAL 2 DAY AS gap, 1.25::DECIMAL(5, 2) AS price, '
                     "TIMESTAMPTZ '2024-01-01 12:00:00+02' AS at, [1, 2] AS items "
                     "FROM sales WHERE \"Region\" = 'East'", tables, LIMITS)
    assert result.rows == [{"Revenue": None, "gap": 172800.0, "price": 1.25, "at": "2024-01-01T10:00:00+00:00",
                            "items": [1, 2]}]
    json.dumps(result.rows, allow_nan=False)


def test_rows_beyond_the_cap_are_cut_and_flagged(tables):
    capped = run_sql("SELECT * FROM sales ORDER BY \"Units\"", tables, SqlLimits(256, 2, 20, max_rows=2))
    assert [row["Units"] for row in capped.rows] == [1, 2]
    assert (capped.row_count, capped.truncated) == (2, True)
    exact = run_sql("SELECT * FROM sales", tables, SqlLimits(256, 2, 20, max_rows=5))
    assert (exact.row_count, exact.truncated) == (5, False)


def test_duplicate_result_names_stay_distinct(tables):
    result = run_sql('SELECT s."Region", w."Region" FROM sales s JOIN stock w USING ("Region") LIMIT 1',
                     tables, LIMITS)
    assert [column["name"] for column in result.columns] == ["Region", "Region_1"]
    assert result.rows == [{"Region": "North", "Region_1": "North"}]


@pytest.mark.parametrize("sql", ["SELECT sales FROM sales LIMIT 1", 'SELECT to_json(s) FROM sales s LIMIT 1'])
def test_a_whole_row_holds_every_column(tables, sql):
    (value,) = run_sql(sql, tables, LIMITS).rows[0].values()
    assert "Customer Name" in (value if isinstance(value, dict) else json.loads(value))


def test_a_binder_error_hints_at_every_column_of_the_table(tables):
    with pytest.raises(SqlError) as caught:
        run_sql("SELECT unit FROM sales", tables, LIMITS)
    assert caught.value.code == "SQL_ERROR" and caught.value.status == 400
    assert caught.value.message.startswith('Binder Error: Referenced column "unit" not found')
    assert '"Units"' in caught.value.message and "LINE 1" not in caught.value.message


@pytest.mark.parametrize("sql,fragment", [
    ("SELECT nope FROM sales", 'Referenced column "nope" not found'),
    ("SELECT 'abc'::INTEGER", "Conversion Error"),
    ("SELEC 1", "Parser Error"),
    ("SELECT * FROM missing", "Table with name missing does not exist"),
])
def test_duckdb_errors_are_sql_errors_with_its_message(tables, sql, fragment):
    with pytest.raises(SqlError, match=fragment) as caught:
        run_sql(sql, tables, LIMITS)
    assert caught.value.code == "SQL_ERROR"


def test_a_slow_query_is_interrupted_at_the_timeout(tables):
    # A trillion-row cross join: without the interrupt this runs for hours.
    with pytest.raises(SqlTimeout) as caught:
        run_sql("SELECT COUNT(*) FROM range(1000000) a, range(1000000) b WHERE (a.range * b.range) % 7 = 3",
                tables, SqlLimits(256, 2, timeout_seconds=0.5, max_rows=10))
    assert caught.value.code == "SQL_TIMEOUT" and caught.value.status == 400
    assert "0.5 s limit" in caught.value.message


def test_a_query_over_the_memory_limit_is_refused_not_spilled(tables, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # DuckDB's default spill directory is ./.tmp
    small = SqlLimits(memory_limit_mb=64, threads=2, timeout_seconds=60, max_rows=10)
    # A 3M x 3M hash join: it completes by spilling to ./.tmp when spilling is allowed, and cannot fit in 64 MB.
    with pytest.raises(SqlTooExpensive) as caught:
        run_sql("SELECT COUNT(*) FROM range(3000000) a JOIN range(3000000) b ON a.range = b.range", tables, small)
    assert caught.value.code == "SQL_TOO_EXPENSIVE" and "64 MB" in caught.value.message
    assert not os.path.exists(tmp_path / ".tmp")
    assert run_sql("SELECT COUNT(*) AS n FROM sales", tables, small).rows == [{"n": 5}]


@pytest.mark.parametrize("sql", [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM '/etc/passwd'",
    "SELECT * FROM glob('/etc/*')",
    "SELECT * FROM read_text('/etc/hostname')",
])
def test_duckdb_itself_refuses_files_even_without_the_policy(tables, sql):
    with pytest.raises(SqlError) as caught:
        run_sql(sql, tables, LIMITS)
    assert "disabled by configuration" in caught.value.message or "does not exist" in caught.value.message


def test_duckdb_cannot_read_the_tables_own_parquet_file(tables):
    with pytest.raises(SqlError, match="disabled by configuration"):
        run_sql(f"SELECT * FROM read_parquet('{tables['sales']}')", tables, LIMITS)


@pytest.mark.parametrize("sql", ["COPY (SELECT 1) TO 'out.csv'", "ATTACH 'other.db'", "SET threads = 64",
                                 "SET enable_external_access = true", "INSTALL httpfs", "LOAD httpfs",
                                 "SELECT 1; SELECT 2"])
def test_the_engine_runs_nothing_but_one_select(tables, sql, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SqlRejected):
        run_sql(sql, tables, LIMITS)
    assert os.listdir(tmp_path) == ["sales.parquet", "stock.parquet"]


@pytest.mark.parametrize("statement,error", [
    ("COPY (SELECT 1) TO '{dir}/out.csv'", duckdb.PermissionException),
    ("COPY sales TO '{dir}/out.parquet' (FORMAT parquet)", duckdb.PermissionException),
    ("ATTACH '{dir}/other.db' AS other", duckdb.PermissionException),
    ("INSTALL httpfs", duckdb.PermissionException),
    ("LOAD httpfs", duckdb.PermissionException),
    ("SELECT * FROM read_parquet('{table}')", duckdb.PermissionException),
    ("SELECT * FROM read_parquet('/etc/passwd')", duckdb.PermissionException),
    ("SET enable_external_access = true", duckdb.InvalidInputException),
    ("SET lock_configuration = false", duckdb.InvalidInputException),
    ("SET memory_limit = '64GB'", duckdb.InvalidInputException),
    ("SET temp_directory = '{dir}'", duckdb.InvalidInputException),
    ("RESET enable_external_access", duckdb.InvalidInputException),
])
def test_the_connection_itself_is_sealed(statement, error, tables, tmp_path):
    # With a table registered as the engine registers it: an Arrow dataset that reads its Parquet file.
    out = tmp_path / "out"
    out.mkdir()
    connection = connect(LIMITS)
    connection.register("sales", pyarrow.dataset.dataset(tables["sales"], format="parquet"))
    with pytest.raises(error):
        connection.execute(statement.format(dir=out, table=tables["sales"]))
    assert os.listdir(out) == []
    assert connection.execute("SELECT current_setting('enable_external_access'), "
                              "current_setting('lock_configuration')").fetchall() == [(False, True)]


@pytest.mark.parametrize("make_secret", [
    lambda path: pl.DataFrame({"password": ["hunter2"]}),
    lambda path: pyarrow.dataset.dataset(path, format="parquet"),
])
def test_python_variables_are_not_tables(make_secret, tables):
    connection = connect(LIMITS)
    secret = make_secret(tables["stock"])  # noqa: F841 - what a replacement scan would find
    with pytest.raises(duckdb.CatalogException, match="does not exist"):
        connection.sql("SELECT * FROM secret")


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts open files through /proc")
def test_queries_that_stop_early_leave_no_file_open(tmp_path):
    path = str(tmp_path / "numbers.parquet")
    pl.DataFrame({"n": range(3_000_000)}).write_parquet(path, row_group_size=10_000)
    for _ in range(5):  # each stops mid-file: at the row cap, or at the timeout
        assert run_sql("SELECT * FROM numbers", {"numbers": path}, SqlLimits(256, 2, 20, max_rows=3)).truncated
        with pytest.raises(SqlTimeout):
            run_sql("SELECT COUNT(*) FROM numbers a, numbers b WHERE (a.n * b.n) % 7 = 3", {"numbers": path},
                    SqlLimits(256, 2, timeout_seconds=0.05, max_rows=3))
    # A stopped scan's read-ahead ends on Arrow's own I/O threads a moment after the query returns, so the count
    # is awaited; a reader left open by each query would never drain.
    deadline = time.monotonic() + 10
    while _open_descriptors(path) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _open_descriptors(path) == 0


def _open_descriptors(path: str) -> int:
    names = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            names.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass  # closed between the listing and the readlink
    return names.count(path)


def test_integers_beyond_64_bits_are_queried_as_decimals(tmp_path):
    # What Polars infers for a CSV column of 23-digit ids; Arrow cannot open such a Parquet file itself.
    path = str(tmp_path / "ids.parquet")
    ids = pl.Series([12345678901234567890123, 7], dtype=pl.Int128)
    pl.DataFrame({"id": ids, "name": ["a", "b"]}).write_parquet(path)
    result = run_sql("SELECT id, id + 1 AS next, name FROM ids ORDER BY name", {"ids": path}, LIMITS)
    assert [column["dtype"] for column in result.columns] == ["DECIMAL(38,0)", "DECIMAL(38,0)", "VARCHAR"]
    assert result.rows == [{"id": "12345678901234567890123", "next": "12345678901234567890124", "name": "a"},
                           {"id": 7.0, "next": 8.0, "name": "b"}]
    assert run_sql("SELECT COUNT(*) AS n FROM ids", {"ids": path}, LIMITS).rows == [{"n": 2}]


def test_arrows_thread_pools_follow_sql_threads(tmp_path):
    import pyarrow as pa

    from common.analysis.sql_engine import _query

    # What the query's own process runs, run here so its pools can be looked at.
    path = str(tmp_path / "t.parquet")
    pl.DataFrame({"x": [1, 2, 3]}).write_parquet(path)
    _query("SELECT SUM(x) AS s FROM t", {"t": path}, dataclasses.replace(LIMITS, threads=1), str(tmp_path))
    assert (pa.cpu_count(), pa.io_thread_count()) == (1, 1)
    _query("SELECT SUM(x) AS s FROM t", {"t": path}, dataclasses.replace(LIMITS, threads=2), str(tmp_path))
    assert (pa.cpu_count(), pa.io_thread_count()) == (2, 2)
