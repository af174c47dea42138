"""A query written to a file for download in its capped process: the budget's rows and bytes, a requested
first-rows cut, the timeout and the memory cap, and the engine's sandbox."""

from __future__ import annotations

import polars as pl
import pytest

from common.analysis.sql_engine import SqlError, SqlLimits, SqlTimeout, SqlTooExpensive
from common.analysis.sql_export import DownloadBudget, export_sql
from common.analysis.sql_policy import SqlRejected
from common.errors import PayloadTooLarge

LIMITS = SqlLimits(memory_limit_mb=256, threads=2, timeout_seconds=20, max_rows=10)
BUDGET = DownloadBudget(max_rows=1000, max_bytes=1024 * 1024, timeout_seconds=30)


@pytest.fixture
def tables(tmp_path) -> dict[str, str]:
    path = str(tmp_path / "sales.parquet")
    pl.DataFrame({"region": ["North", "South"] * 50, "units": list(range(100))}).write_parquet(path)
    return {"sales": path}


def export(tmp_path, sql: str, tables: dict[str, str], fmt: str = "csv", budget: DownloadBudget = BUDGET,
           limits: SqlLimits = LIMITS, **options):
    return export_sql(sql, tables, limits, budget, fmt, str(tmp_path / f"out.{fmt}"), **options)


def test_the_whole_result_is_written_not_cut_at_the_sql_row_cap(tmp_path, tables):
    exported = export(tmp_path, "SELECT * FROM sales ORDER BY units", tables)
    assert (exported.rows, exported.truncated, exported.fmt) == (100, False, "csv")  # LIMITS caps answers at 10
    assert pl.read_csv(exported.path)["units"].to_list() == list(range(100))
    assert exported.size == (tmp_path / "out.csv").stat().st_size
    assert exported.columns == [{"name": "region", "dtype": "string"}, {"name": "units", "dtype": "int64"}]


def test_repeated_column_names_are_made_unique(tmp_path, tables):
    exported = export(tmp_path, "SELECT units, units FROM sales LIMIT 1", tables, "parquet")
    assert pl.read_parquet(exported.path).columns == ["units", "units_2"]


def test_more_rows_than_the_budget_is_refused_and_exactly_the_budget_is_written(tmp_path, tables):
    budget = DownloadBudget(max_rows=99, max_bytes=1024 * 1024, timeout_seconds=30)
    with pytest.raises(PayloadTooLarge) as refused:
        export(tmp_path, "SELECT * FROM sales", tables, budget=budget)
    assert refused.value.code == "RESULT_TOO_LARGE" and refused.value.details == {"format": "csv", "max_rows": 99}
    assert export(tmp_path, "SELECT * FROM sales LIMIT 99", tables, budget=budget).rows == 99


def test_a_requested_limit_writes_the_first_rows_and_says_so(tmp_path, tables):
    cut = export(tmp_path, "SELECT * FROM sales ORDER BY units", tables, "xlsx", row_limit=7)
    assert (cut.rows, cut.truncated) == (7, True)
    assert pl.read_excel(cut.path)["units"].to_list() == list(range(7))
    whole = export(tmp_path, "SELECT * FROM sales", tables, row_limit=100)
    assert (whole.rows, whole.truncated) == (100, False)


def test_a_file_past_the_byte_budget_is_refused(tmp_path, tables):
    budget = DownloadBudget(max_rows=10 ** 6, max_bytes=100_000, timeout_seconds=30)
    for fmt in ("csv", "xlsx", "parquet"):
        with pytest.raises(PayloadTooLarge) as refused:
            export(tmp_path, "SELECT range AS n, md5(range::VARCHAR) AS h FROM range(100000)", tables, fmt,
                   budget=budget)
        assert refused.value.details["max_bytes"] == 100_000 and refused.value.details["rows_written"] > 0


def test_the_download_has_its_own_deadline(tmp_path, tables):
    budget = DownloadBudget(max_rows=10, max_bytes=1024, timeout_seconds=0.5)
    with pytest.raises(SqlTimeout, match="0.5 s limit"):
        export(tmp_path, "SELECT COUNT(*) FROM range(1000000) a, range(1000000) b WHERE (a.range * b.range) % 7 = 3",
               tables, budget=budget)


@pytest.mark.parametrize("sql", ["SELECT length(repeat('x', 2000000000)) AS n",
                                 "SELECT repeat('x', 1000000) AS s FROM range(10000)"])
def test_a_query_past_the_memory_cap_is_refused(tmp_path, tables, sql):
    budget = DownloadBudget(max_rows=10 ** 6, max_bytes=10 ** 10, timeout_seconds=60)
    with pytest.raises(SqlTooExpensive, match="256 MB"):
        export(tmp_path, sql, tables, budget=budget)


def test_the_engine_sandbox_holds_without_the_policy(tmp_path, tables):
    with pytest.raises(SqlRejected):
        export(tmp_path, "SELECT 1; SELECT 2", tables)
    with pytest.raises(SqlError):
        export(tmp_path, "SELECT * FROM read_csv('/etc/passwd')", tables)
    with pytest.raises(SqlError, match="nope"):
        export(tmp_path, "SELECT nope FROM sales", tables)
