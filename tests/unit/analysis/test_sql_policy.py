"""The SQL gate: what a model may run over a domain's tables, what it may not, and how its SQL is normalised.

Allowed queries are also run in DuckDB over small tables with the same schema, so "allowed" means "runs".
"""

from __future__ import annotations

import duckdb
import pytest

from common.analysis.sql_policy import SqlRejected, check_sql, tables_read
from common.errors import BadRequest

SCHEMA = {
    "sales": ["Region", "Month", "Revenue", "order", "Units"],
    "stock": ["sku", "units", "Region"],
    "book_q1": ["sku", "qty"],
}


@pytest.fixture(scope="module")
def duck():
    connection = duckdb.connect()
    connection.execute("""CREATE TABLE sales AS SELECT * FROM (VALUES
        ('North', '2024-01', 120.5, 1, 3), ('South', '2024-01', 80.0, 2, 5), ('North', '2024-02', 130.0, 3, 7))
        AS v("Region", "Month", "Revenue", "order", "Units")""")
    connection.execute("""CREATE TABLE stock AS SELECT * FROM (VALUES ('A', 3, 'North'), ('B', 5, 'South'))
        AS v(sku, units, "Region")""")
    connection.execute("CREATE TABLE book_q1 AS SELECT * FROM (VALUES ('A', 1)) AS v(sku, qty)")
    return connection


def rejected(sql: str) -> str:
    with pytest.raises(SqlRejected) as caught:
        check_sql(sql, SCHEMA)
    assert caught.value.status == 400 and caught.value.code == "SQL_REJECTED"
    return caught.value.message


ALLOWED = [
    "SELECT Region, SUM(Revenue) AS total FROM sales GROUP BY Region ORDER BY total DESC LIMIT 5",
    "WITH monthly AS (SELECT Month, SUM(Revenue) AS revenue FROM sales GROUP BY 1) SELECT * FROM monthly",
    "WITH a AS (SELECT 1 AS x), b AS (SELECT x + 1 AS y FROM a) SELECT * FROM b JOIN a ON b.y > a.x",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT SUM(n) FROM r",
    "SELECT sku FROM stock UNION ALL SELECT sku FROM book_q1",
    "SELECT sku FROM stock INTERSECT SELECT sku FROM book_q1",
    "SELECT sku FROM stock EXCEPT SELECT sku FROM book_q1",
    "(SELECT Region FROM sales)",
    "SELECT Month, SUM(Revenue) OVER (PARTITION BY Region ORDER BY Month ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) "
    "FROM sales",
    "SELECT Region, Month FROM sales QUALIFY ROW_NUMBER() OVER (PARTITION BY Region ORDER BY Revenue DESC) = 1",
    "SELECT s.Region, st.sku, b.qty FROM sales AS s JOIN stock AS st ON s.Region = st.Region "
    "LEFT JOIN book_q1 AS b USING (sku)",
    "SELECT * FROM stock WHERE sku IN (SELECT sku FROM book_q1) AND EXISTS (SELECT 1 FROM sales)",
    "SELECT (SELECT MAX(Revenue) FROM sales) AS top, COUNT(*) FROM stock",
    "SELECT CASE WHEN Revenue > 100 THEN 'high' ELSE 'low' END, CAST(Units AS DOUBLE) FROM sales",
    "SELECT date_trunc('month', CAST(Month || '-01' AS DATE)), strftime(current_date, '%Y') FROM sales",
    "SELECT string_agg(Region, ', ' ORDER BY Region), list_transform([1, 2], x -> x * 2) FROM sales",
    "SELECT regexp_matches(Region, '^N'), upper(Region), round(Revenue, 1) FROM sales",
    "SELECT * FROM range(3) AS r(i) CROSS JOIN generate_series(1, 2) AS g(j)",
    "SELECT * FROM UNNEST([1, 2, 3]) AS u(x)",
    "SELECT * FROM sales PIVOT (SUM(Revenue) FOR Region IN ('North', 'South'))",
    "SELECT Region, SUM(Units) FROM sales GROUP BY ALL ORDER BY ALL",
    "SELECT * EXCLUDE (\"order\") FROM sales",
    "SELECT COLUMNS('Re.*') FROM sales",
    "FROM sales",
    "SELECT 1 -- a comment; DROP TABLE sales\n",
    "SELECT 1 /* DROP TABLE sales; */ ;",
    "SELECT 1; -- DROP TABLE sales",
    "SELECT now(), current_timestamp, today()",
]


@pytest.mark.parametrize("sql", ALLOWED)
def test_read_only_queries_are_allowed_and_their_normalised_sql_runs(sql, duck):
    normalised = check_sql(sql, SCHEMA)
    duck.execute(normalised).fetchall()
    assert "DROP" not in normalised  # comments are not carried into the SQL that runs


@pytest.mark.parametrize("sql,statement", [
    ("DELETE FROM sales", "DELETE"),
    ("INSERT INTO sales VALUES (1)", "INSERT"),
    ("UPDATE sales SET Units = 0", "UPDATE"),
    ("CREATE TABLE x AS SELECT 1", "CREATE"),
    ("CREATE VIEW v AS SELECT * FROM sales", "CREATE"),
    ("CREATE MACRO m(a) AS a", "CREATE"),
    ("DROP TABLE sales", "DROP"),
    ("ALTER TABLE sales ADD COLUMN x INT", "ALTER"),
    ("ATTACH 'other.db' AS other", "ATTACH"),
    ("DETACH other", "DETACH"),
    ("COPY sales TO 'out.csv'", "COPY"),
    ("PRAGMA table_info('sales')", "PRAGMA"),
    ("SET enable_external_access = true", "SET"),
    ("SET memory_limit = '100GB'", "SET"),
    ("RESET memory_limit", "RESET"),
    ("INSTALL httpfs", "INSTALL"),
    ("LOAD httpfs", "LOAD"),
    ("CALL pragma_version()", "CALL"),
    ("USE memory", "USE"),
    ("CHECKPOINT", "CHECKPOINT"),
    ("DESCRIBE sales", "DESCRIBE"),
    ("SUMMARIZE sales", "SUMMARIZE"),
    ("EXPLAIN SELECT 1", "EXPLAIN"),
    ("VACUUM", "VACUUM"),
    ("BEGIN TRANSACTION", "TRANSACTION"),
    ("VALUES (1)", "VALUES"),
])
def test_statements_other_than_select_are_rejected_by_name(sql, statement):
    assert rejected(sql) == f"only SELECT queries are allowed, got {statement}"


@pytest.mark.parametrize("sql,found", [
    ("WITH gone AS (DELETE FROM sales RETURNING *) SELECT * FROM gone", "DELETE"),
    ("WITH x AS (INSERT INTO sales VALUES (1) RETURNING *) SELECT * FROM x", "INSERT"),
    ("SELECT * INTO copy_of_sales FROM sales", "SELECT INTO"),
])
def test_writes_hidden_inside_a_select_are_rejected(sql, found):
    assert rejected(sql) == f"only read-only SELECT queries are allowed; found {found} inside the query"


@pytest.mark.parametrize("sql", [
    "SELECT 1; SELECT 2",
    "SELECT * FROM sales; DROP TABLE sales",
    "SELECT * FROM sales /* harmless? */; DROP TABLE sales --",
    "SELECT 1; -- the rest is a comment\nDROP TABLE sales",
    "SELECT 1;;SELECT 2",
])
def test_more_than_one_statement_is_rejected(sql):
    assert rejected(sql) == "exactly one statement is allowed, got 2"


@pytest.mark.parametrize("sql", ["", "   ", "-- only a comment"])
def test_empty_sql_is_rejected(sql):
    assert rejected(sql) in {"the SQL is empty", "exactly one statement is allowed, got 0"}


def test_unparseable_sql_says_where():
    assert rejected("SELEC Region FROM sales").startswith("the SQL could not be parsed")


DENIED = ["read_csv", "read_csv_auto", "read_parquet", "parquet_scan", "read_json", "read_json_auto",
          "read_ndjson", "read_text", "read_blob", "glob", "sniff_csv", "iceberg_scan", "delta_scan", "sqlite_scan",
          "postgres_scan", "getenv", "current_setting", "current_query", "current_database", "current_schema",
          "duckdb_settings", "duckdb_tables", "duckdb_functions", "duckdb_extensions", "duckdb_secrets",
          "pragma_version", "pragma_table_info", "query", "query_table", "load_extension", "install",
          "getvariable", "json_execute_serialized_sql", "nextval", "sleep_ms", "pg_sleep", "write_log",
          "which_secret", "enable_logging", "parquet_metadata", "has_table_privilege", "pg_get_viewdef",
          "json_serialize_plan"]
# How each is called where plain f('x') does not parse (a keyword, or a function sqlglot knows takes no argument).
CALLS = {"install": "\"install\"('x')", "current_database": "current_database()"}
PLACES = [
    "SELECT {f}",
    "SELECT Region FROM sales WHERE Region = {f}",
    "SELECT Region FROM sales ORDER BY {f}",
    "SELECT Region FROM sales GROUP BY Region HAVING COUNT(*) > length({f})",
    "SELECT (SELECT {f}) FROM sales",
    "WITH c AS (SELECT {f} AS v) SELECT * FROM c",
    "SELECT * FROM sales WHERE EXISTS (SELECT 1 FROM stock WHERE sku = upper({f}))",
    "SELECT list_transform([1], x -> {f})",
    "SELECT main.{f}",
    "SELECT * FROM sales JOIN stock ON {f} = stock.sku",
    "SELECT * FROM {f}",
]


@pytest.mark.parametrize("function", DENIED)
@pytest.mark.parametrize("place", PLACES)
def test_denied_functions_are_rejected_wherever_they_stand(function, place):
    message = rejected(place.format(f=CALLS.get(function, f"{function}('x')")))
    assert message in {f"function {function} is not allowed", f"table function {function} is not allowed"}


def test_every_table_function_in_duckdbs_catalogue_but_generators_is_rejected_in_from():
    rows = duckdb.connect().execute("SELECT DISTINCT function_name FROM duckdb_functions() "
                                    "WHERE function_type IN ('table', 'table_macro')").fetchall()
    allowed = []
    for (name,) in rows:
        try:
            check_sql(f"SELECT * FROM {name}('x')", SCHEMA)
            allowed.append(name)
        except SqlRejected:
            pass
    assert len(rows) > 50 and sorted(allowed) == ["generate_series", "range", "unnest"]


@pytest.mark.parametrize("sql,message", [
    ("SELECT * FROM 'data.csv'", "reading files is not allowed: 'data.csv' is not a table"),
    ("SELECT * FROM '/etc/passwd'", "reading files is not allowed: '/etc/passwd' is not a table"),
    ('SELECT * FROM "s3://bucket/x.parquet"', "reading files is not allowed: 's3://bucket/x.parquet'"),
    ("SELECT * FROM nope", "unknown table 'nope'; tables: book_q1, sales, stock"),
    ("SELECT * FROM sqlite_master", "unknown table 'sqlite_master'"),
    ("SELECT * FROM duckdb_settings", "unknown table 'duckdb_settings'"),
    ("SELECT * FROM pg_tables", "unknown table 'pg_tables'"),
    ("SELECT * FROM main.sales", "schema-qualified or computed table names are not allowed: main.sales"),
    ("SELECT * FROM memory.main.sales", "schema-qualified or computed table names are not allowed"),
    ("SELECT * FROM information_schema.tables", "not allowed: information_schema.tables"),
    ("SELECT * FROM pg_catalog.pg_class", "not allowed: pg_catalog.pg_class"),
    ("SELECT * FROM sales WHERE sku IN (SELECT sku FROM other)", "unknown table 'other'"),
    # A CTE's name is a table only inside its scope; outside it would reach DuckDB's catalogue.
    ("SELECT * FROM (WITH duckdb_views AS (SELECT 1) SELECT * FROM duckdb_views), duckdb_views",
     "unknown table 'duckdb_views'"),
])
def test_only_the_domains_tables_and_ctes_can_be_read(sql, message):
    assert message in rejected(sql)


def test_identifiers_take_the_schemas_spelling():
    sql = check_sql("select REGION, sum(revenue) as total from SALES s where s.region <> 'x' group by region",
                    SCHEMA)
    assert sql == ('SELECT "Region", SUM("Revenue") AS total FROM sales AS s WHERE s."Region" <> \'x\' '
                   'GROUP BY "Region"')


def test_a_column_spelled_differently_in_two_tables_resolves_per_qualifier():
    sql = check_sql("SELECT s.units, t.UNITS FROM sales s, stock t", SCHEMA)
    assert sql == 'SELECT s."Units", t.units FROM sales AS s, stock AS t'
    # Unqualified, it could be either: left as written for DuckDB to resolve or report.
    assert check_sql("SELECT units FROM sales, stock", SCHEMA) == "SELECT units FROM sales, stock"


def test_a_double_quoted_non_column_is_read_as_a_string(duck):
    sql = check_sql('SELECT Month FROM sales WHERE Region = "North" ORDER BY Month', SCHEMA)
    assert sql == "SELECT \"Month\" FROM sales WHERE \"Region\" = 'North' ORDER BY \"Month\""
    assert duck.execute(sql).fetchall() == [("2024-01",), ("2024-02",)]


def test_double_quoted_columns_aliases_and_cte_columns_stay_identifiers(duck):
    sql = check_sql('WITH t AS (SELECT "region" AS "Area", SUM(Revenue) AS "Total" FROM sales GROUP BY 1) '
                    'SELECT "Area", "Total" FROM t ORDER BY "Total" DESC', SCHEMA)
    assert "'" not in sql
    assert duck.execute(sql).fetchall() == [("North", 250.5), ("South", 80.0)]


def test_a_column_named_like_a_keyword_is_a_column_not_a_string(duck):
    sql = check_sql('SELECT "ORDER" FROM sales WHERE Region = "South"', SCHEMA)
    assert sql == "SELECT \"order\" FROM sales WHERE \"Region\" = 'South'"
    assert duck.execute(sql).fetchall() == [(2,)]


def test_table_names_resolve_case_insensitively():
    assert check_sql('SELECT sku FROM "STOCK" JOIN Book_Q1 USING (sku)', SCHEMA) == \
        'SELECT sku FROM "stock" JOIN book_q1 USING (sku)'


def test_tables_read_lists_what_a_query_reads_and_no_cte():
    # A CTE is not a table (issue 10: provenance names what was read, and no copy is fetched for a CTE's name).
    sql = check_sql("WITH c AS (SELECT sku FROM stock) SELECT * FROM c JOIN Book_Q1 USING (sku)", SCHEMA)
    assert tables_read(sql) == {"stock", "book_q1"}


def test_rejection_is_a_bad_request_a_client_can_show():
    error = pytest.raises(SqlRejected, check_sql, "DROP TABLE sales", SCHEMA).value
    assert isinstance(error, BadRequest) and error.status == 400
