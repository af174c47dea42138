"""Which tables a checked query reads: what an answer's provenance names (CTEs are not tables).

Each query is checked by the SQL gate first, as the pipeline's are, and the shadowing case is run in DuckDB to
show that the name it reads there is the CTE, not the table.
"""

from __future__ import annotations

import duckdb
import pytest

from common.analysis.sql_policy import check_sql, tables_read

SCHEMA = {"sales": ["region", "revenue"], "big": ["region", "n"], "big2": ["region", "n"],
          "book_sheet2": ["sku", "qty"]}


def read(sql: str) -> set[str]:
    return tables_read(check_sql(sql, SCHEMA))


@pytest.mark.parametrize("sql, tables", [
    ("SELECT region, SUM(revenue) FROM sales GROUP BY region", {"sales"}),
    ("SELECT * FROM sales JOIN big USING (region)", {"sales", "big"}),
    ('SELECT * FROM "SALES" s JOIN Big b ON s.region = b.region', {"sales", "big"}),  # quoted and case variants
    ("WITH c AS (SELECT region FROM sales) SELECT * FROM c", {"sales"}),  # a CTE is not a table
    ("WITH C AS (SELECT region FROM sales) SELECT * FROM c JOIN big USING (region)", {"sales", "big"}),
    ("SELECT (SELECT MAX(n) FROM big2) AS m FROM sales WHERE region IN (SELECT region FROM big)",
     {"sales", "big", "big2"}),  # subqueries read too
    ("SELECT region FROM sales UNION SELECT sku FROM book_sheet2", {"sales", "book_sheet2"}),
    ("WITH RECURSIVE r AS (SELECT 1 AS k UNION ALL SELECT k + 1 FROM r WHERE k < 3) SELECT * FROM r, big", {"big"}),
    ("SELECT * FROM range(3)", set()),  # a table function is not a table
])
def test_the_tables_a_query_reads(sql, tables):
    assert read(sql) == tables


def test_a_cte_named_like_a_table_hides_that_table():
    sql = check_sql("WITH big AS (SELECT region, revenue AS n FROM sales) SELECT SUM(n) AS n FROM big", SCHEMA)
    assert tables_read(sql) == {"sales"}
    duck = duckdb.connect()
    duck.execute("CREATE TABLE sales AS SELECT * FROM (VALUES ('North', 5)) AS v(region, revenue)")
    duck.execute("CREATE TABLE big AS SELECT * FROM (VALUES ('North', 1000)) AS v(region, n)")
    assert duck.execute(sql).fetchall() == [(5,)]  # DuckDB read sales through the CTE, never the table big


def test_a_cte_visible_only_in_its_own_scope_does_not_hide_the_table_elsewhere():
    sql = "SELECT (WITH big AS (SELECT 1 AS n) SELECT n FROM big) AS one, n FROM big"
    assert read(sql) == {"big"}
    assert read("SELECT (WITH big AS (SELECT 1 AS n) SELECT n FROM big) AS one FROM sales") == {"sales"}
