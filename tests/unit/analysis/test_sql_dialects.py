"""SQL in other dialects: each idiom gives DuckDB (through ``domain_sql.query``) the answer its own engine gives.

SQLite answers come from Python's sqlite3, Postgres answers from the Postgres on 127.0.0.1:5432 (a schema of its
own per run, dropped after). MySQL has no engine here; its idioms are compared with SQLite's same-meaning query.
The malicious corpus of the policy tests is refused in every dialect sqlglot reads.
"""

from __future__ import annotations

import math
import sqlite3
import types
import uuid

import duckdb
import pytest
import sqlglot

from common.analysis.sql_dialects import accepted_dialects, dialect_name, to_duckdb
from common.analysis.sql_policy import SqlRejected, check_sql
from common.config import Settings
from common.errors import BadRequest
from common.services import domain_sql
from tests.unit.analysis.test_sql_policy import CALLS, DENIED, PLACES, SCHEMA

COLUMNS = ("team", "name", "score", "qty", "city")
ROWS = [("red", "ann", 72.25, 3, "Oslo"), ("red", "bob", 91.75, 5, None), ("red", "cat", 64.0, 2, "Rome"),
        ("blue", "dan", 55.5, 7, "Oslo"), ("blue", "eve", 88.0, 4, "Lima"), ("green", "fay", 70.0, 1, None)]
TEAM_NAMES = {"red": {"ann", "bob", "cat"}, "blue": {"dan", "eve"}, "green": {"fay"}}

# (dialect, SQL as written, the reference engine's SQL when it differs: MySQL idioms run in SQLite's spelling)
IDIOMS = [
    ("sqlite", "SELECT team, name, MAX(score) AS top FROM scores GROUP BY team", None),
    ("sqlite", "SELECT team, name, MIN(score) AS low FROM scores GROUP BY team", None),
    ("sqlite", "SELECT name, MAX(score) FROM scores", None),
    ("sqlite", "SELECT team, UPPER(name) AS who, MIN(qty) FROM scores GROUP BY 1", None),
    ("sqlite", "SELECT name || qty AS label FROM scores", None),
    ("sqlite", "SELECT IFNULL(city, 'none') AS place, name FROM scores", None),
    ("sqlite", "SELECT name FROM scores ORDER BY score DESC LIMIT 1, 2", None),
    ("sqlite", "SELECT SUBSTR(name, 2) AS tail FROM scores", None),
    ("sqlite", "SELECT team, SUM(qty) AS total FROM scores GROUP BY team HAVING total > 5", None),
    ("sqlite", "SELECT team, AVG(score) AS mean, COUNT(city) AS known FROM scores GROUP BY team", None),
    ("sqlite", "SELECT name, CASE WHEN score > 70 THEN 'hi' ELSE 'lo' END AS band FROM scores", None),
    ("mysql", "SELECT team, name, MAX(score) FROM scores GROUP BY team",
     "SELECT team, name, MAX(score) FROM scores GROUP BY team"),
    ("mysql", "SELECT `name` FROM scores ORDER BY score DESC LIMIT 1, 2",
     "SELECT name FROM scores ORDER BY score DESC LIMIT 1, 2"),
    ("mysql", "SELECT name, IF(score > 70, 'hi', 'lo') AS band FROM scores WHERE team = \"red\"",
     "SELECT name, CASE WHEN score > 70 THEN 'hi' ELSE 'lo' END AS band FROM scores WHERE team = 'red'"),
    ("mysql", "SELECT IFNULL(city, 'none') AS place, COUNT(*) AS n FROM scores GROUP BY place",
     "SELECT IFNULL(city, 'none') AS place, COUNT(*) AS n FROM scores GROUP BY place"),
    ("postgres", "SELECT team, COUNT(*) FILTER (WHERE score > 70) AS n FROM scores GROUP BY team", None),
    ("postgres", "SELECT DISTINCT ON (team) team, name FROM scores ORDER BY team, score DESC", None),
    ("postgres", "SELECT name, RANK() OVER (PARTITION BY team ORDER BY score DESC) AS r FROM scores", None),
    ("postgres", "SELECT team, STRING_AGG(name, ',' ORDER BY name) AS names FROM scores GROUP BY team", None),
    ("postgres", "SELECT name, score::int AS whole FROM scores", None),
    ("postgres", "SELECT name FROM scores WHERE name ILIKE 'A%' OR city IS NULL", None),
    ("postgres", "SELECT COALESCE(city, 'none') AS place, name FROM scores ORDER BY name LIMIT 3 OFFSET 1", None),
]


@pytest.fixture(scope="module")
def deps(tmp_path_factory):
    """Ports enough for ``domain_sql.query``: settings, and a blob store whose one Parquet file is local."""
    path = str(tmp_path_factory.mktemp("dialects") / "scores.parquet")
    connection = duckdb.connect()
    types_ = ["VARCHAR", "VARCHAR", "DOUBLE", "INTEGER", "VARCHAR"]
    connection.execute(f"CREATE TABLE scores ({', '.join(f'{c} {t}' for c, t in zip(COLUMNS, types_, strict=True))})")
    connection.executemany("INSERT INTO scores VALUES (?, ?, ?, ?, ?)", ROWS)
    connection.execute(f"COPY scores TO '{path}' (FORMAT parquet)")
    return types.SimpleNamespace(settings=Settings.from_env({}),
                                 blobs=types.SimpleNamespace(local_path=lambda key: path))


@pytest.fixture
def run(deps, monkeypatch):
    """Run SQL through ``domain_sql.query`` over the one table ``scores``; return its body."""
    table = domain_sql.DomainTable("scores", "scores.csv", "scores.csv", None, len(ROWS),
                                   [{"name": column} for column in COLUMNS], "scores.parquet", "scores.json")
    monkeypatch.setattr(domain_sql, "domain_tables", lambda *_: [table])
    return lambda sql, dialect=None: domain_sql.query(deps, None, "shop", sql, dialect=dialect)


@pytest.fixture(scope="module")
def sqlite_db():
    connection = sqlite3.connect(":memory:")
    connection.execute(f"CREATE TABLE scores ({', '.join(COLUMNS)})")
    connection.executemany("INSERT INTO scores VALUES (?, ?, ?, ?, ?)", ROWS)
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def postgres_db():
    pg8000 = pytest.importorskip("pg8000.native")
    try:
        connection = pg8000.Connection("postgres", host="127.0.0.1", database="test")
    except Exception as exc:  # noqa: BLE001 - no server means no reference answers
        pytest.skip(f"no Postgres on 127.0.0.1:5432: {exc}")
    schema = f"dialects_{uuid.uuid4().hex[:12]}"
    connection.run(f"CREATE SCHEMA {schema}")
    connection.run(f"SET search_path TO {schema}")
    connection.run("CREATE TABLE scores (team text, name text, score float8, qty int, city text)")
    for row in ROWS:
        connection.run("INSERT INTO scores VALUES (:a, :b, :c, :d, :e)", **dict(zip("abcde", row, strict=True)))
    yield connection
    connection.run(f"DROP SCHEMA {schema} CASCADE")
    connection.close()


def reference(dialect, sql, request) -> list[tuple]:
    if dialect == "postgres":
        return [tuple(row) for row in request.getfixturevalue("postgres_db").run(sql)]
    return request.getfixturevalue("sqlite_db").execute(sql).fetchall()


def same(ours: list[tuple], theirs: list[tuple], ordered: bool) -> bool:
    def key(row):
        return tuple((value is None, str(value)) for value in row)

    if not ordered:
        ours, theirs = sorted(ours, key=key), sorted(theirs, key=key)
    return len(ours) == len(theirs) and all(
        len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
        for a, b in zip(ours, theirs, strict=True))


def _equal(ours, theirs) -> bool:
    if isinstance(ours, (int, float)) and isinstance(theirs, (int, float)) and not isinstance(ours, bool):
        return math.isclose(float(ours), float(theirs), rel_tol=1e-9, abs_tol=1e-9)
    return ours == theirs


@pytest.mark.parametrize("dialect,sql,reference_sql", IDIOMS, ids=[f"{d}:{s[:50]}" for d, s, _ in IDIOMS])
def test_each_idiom_gives_its_own_engines_answer(dialect, sql, reference_sql, run, request):
    body = run(sql, dialect)
    ours = [tuple(row.values()) for row in body["rows"]]
    theirs = reference(dialect, reference_sql or sql, request)
    ordered = bool(sqlglot.parse_one(sql, read=dialect).args.get("order"))  # the query's own, not a window's
    assert same(ours, theirs, ordered), (body["sql"], ours, theirs)
    assert body["dialect"] == dialect and f"transpiled from {dialect} to duckdb" in body["rewrites"]


def test_a_bare_column_beside_max_comes_from_the_max_row(run):
    body = run("SELECT team, name, MAX(score) AS top FROM scores GROUP BY team ORDER BY team", "sqlite")
    assert [(row["team"], row["name"]) for row in body["rows"]] == [("blue", "eve"), ("green", "fay"),
                                                                   ("red", "bob")]
    assert "ARG_MAX(name, score) AS name" in body["sql"]
    assert "column name is neither grouped nor aggregated: read as ARG_MAX(name, score)" in body["rewrites"]


def test_a_bare_column_beside_min_comes_from_the_min_row_in_duckdb_sql_too(run):
    body = run("SELECT team, name, MIN(score) AS low FROM scores GROUP BY team ORDER BY team")
    assert [row["name"] for row in body["rows"]] == ["dan", "fay", "cat"]
    assert body["dialect"] == "duckdb" and body["rewrites"] == [
        "column name is neither grouped nor aggregated: read as ARG_MIN(name, score)"]


@pytest.mark.parametrize("dialect", ["sqlite", "mysql", "duckdb", "postgres"])
def test_a_bare_column_beside_sum_is_some_value_of_its_group(run, dialect):
    body = run("SELECT team, name, SUM(qty) AS total FROM scores GROUP BY team", dialect)
    assert {row["team"]: row["total"] for row in body["rows"]} == {"red": 10, "blue": 11, "green": 1}
    assert all(row["name"] in TEAM_NAMES[row["team"]] for row in body["rows"])
    assert "column name is neither grouped nor aggregated: read as ANY_VALUE(name)" in body["rewrites"]


@pytest.mark.parametrize("sql", [
    "SELECT team, SUM(qty) AS total FROM scores GROUP BY team",
    "SELECT team, SUM(qty) AS total, total * 2 AS twice FROM scores GROUP BY team",
    "SELECT team AS t, COUNT(*) FROM scores GROUP BY t",
    "SELECT name, SUM(qty) OVER (PARTITION BY team) AS team_qty FROM scores",
    "SELECT LOWER(team), COUNT(*) FROM scores GROUP BY LOWER(team)",
])
def test_queries_duckdb_already_accepts_run_as_written(run, sql):
    body = run(sql)
    assert body["rewrites"] == [] and body["rows"]


def test_duckdb_sql_is_not_rewritten_when_nothing_needs_it():
    sql = 'select REGION from SALES where Region = "North"'
    assert to_duckdb(sql) == (sql, [])


@pytest.mark.parametrize("dialect", [None, "DuckDB", " sqlite ", "tsql"])
def test_known_dialects_are_accepted_in_any_case(dialect):
    assert dialect_name(dialect) in accepted_dialects()


@pytest.mark.parametrize("dialect", ["oracle9", "", 3, ["sqlite"]])
def test_an_unknown_dialect_is_a_bad_request_naming_the_accepted_ones(dialect):
    with pytest.raises(BadRequest) as caught:
        dialect_name(dialect)
    assert caught.value.code == "UNKNOWN_DIALECT" and "postgres, presto" in str(caught.value)


STATEMENTS = [
    "DELETE FROM sales", "INSERT INTO sales VALUES (1)", "UPDATE sales SET Units = 0", "CREATE TABLE x AS SELECT 1",
    "DROP TABLE sales", "ALTER TABLE sales ADD COLUMN x INT", "ATTACH 'other.db' AS other", "COPY sales TO 'out.csv'",
    "PRAGMA table_info('sales')", "SET enable_external_access = true", "INSTALL httpfs", "LOAD httpfs",
    "CALL pragma_version()", "DESCRIBE sales", "EXPLAIN SELECT 1", "VACUUM", "BEGIN TRANSACTION",
    "WITH gone AS (DELETE FROM sales RETURNING *) SELECT * FROM gone", "SELECT * INTO copy_of_sales FROM sales",
    "SELECT 1; SELECT 2", "SELECT * FROM sales; DROP TABLE sales", "SELECT 1; -- x\nDROP TABLE sales",
    "SELECT * FROM 'data.csv'", "SELECT * FROM '/etc/passwd'", 'SELECT * FROM "s3://bucket/x.parquet"',
    "SELECT * FROM main.sales", "SELECT * FROM information_schema.tables", "SELECT * FROM pg_catalog.pg_class",
    "SELECT * FROM sqlite_master", "SELECT * FROM duckdb_settings", "SELECT * FROM `/etc/passwd`",
    "SELECT * FROM [dbo].[sales]", "SELECT * FROM OPENROWSET('x', 'y')",
]
MALICIOUS = STATEMENTS + [place.format(f=CALLS.get(f, f"{f}('x')")) for f in DENIED for place in PLACES]


@pytest.mark.parametrize("dialect", accepted_dialects())
def test_the_malicious_corpus_is_refused_in_every_dialect(dialect):
    escaped = []
    for sql in MALICIOUS:
        try:
            escaped.append((sql, check_sql(to_duckdb(sql, dialect)[0], SCHEMA)))
        except SqlRejected:
            pass
    assert escaped == []


def test_group_by_all_leaves_every_column_grouped():
    from common.analysis.sql_dialects import to_duckdb

    sql = "SELECT region, category, SUM(revenue) FROM sales GROUP BY ALL"
    assert to_duckdb(sql, "duckdb") == (sql, [])
