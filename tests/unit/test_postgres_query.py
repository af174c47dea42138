"""Postgres SQL: the dataset SQL policy, transpiled to Postgres and checked again; question tokens."""

from __future__ import annotations

import pytest

from common import errors
from common.analysis.sql_policy import SqlRejected
from common.services.postgres.query import checked_postgres_sql, row_limit, sql_text, unique_names
from common.services.postgres.questions import DEFAULT_CONNECTION, parse_token

SCHEMA = {"Sales Data": ["Region", "revenue", "order"], "select": ["a"], "orders": ["id", "amount"]}


@pytest.mark.parametrize("sql,expected", [
    ("select region, sum(revenue) as total from \"Sales Data\" group by region",
     'SELECT "Region", SUM(revenue) AS total FROM "Sales Data" GROUP BY "Region"'),
    ('select * from "select" where a::int > 2', 'SELECT * FROM "select" WHERE CAST(a AS INT) > 2'),
    ('select "order" from "Sales Data" limit 5', 'SELECT "order" FROM "Sales Data" LIMIT 5'),
    ("with big as (select * from orders where amount > 10) select count(*) from big",
     "WITH big AS (SELECT * FROM orders WHERE amount > 10) SELECT COUNT(*) FROM big"),
    ("select strftime(now(), '%Y') as y", "SELECT TO_CHAR(NOW(), 'YYYY') AS y"),
])
def test_a_plain_select_transpiles_to_postgres(sql, expected):
    assert checked_postgres_sql(sql, SCHEMA) == expected


@pytest.mark.parametrize("sql", [
    "delete from orders", "insert into orders values (1, 2)", "update orders set amount = 0",
    "drop table orders", "create table x as select 1", "select * into copy from orders", "select 1; select 2",
    "copy orders to '/tmp/x'", "set statement_timeout = 0", "select * from pg_shadow",
    "select * from pg_catalog.pg_class", "select * from public.orders", "select pg_sleep(10)",
    "select pg_read_file('/etc/passwd')", "select set_config('statement_timeout', '0', true)",
    "select query_to_xml('delete from orders', true, true, '')", "select dblink('host=x', 'select 1')",
    "select lo_import('/etc/passwd')", "select current_setting('data_directory')", "select version()",
    "select * from nope", "select txid_current()", "",
])
def test_anything_but_one_read_only_select_over_the_schema_is_rejected(sql):
    with pytest.raises(SqlRejected):
        checked_postgres_sql(sql, SCHEMA)


def test_sql_text_and_row_limit_validate_the_request():
    assert sql_text("select 1") == "select 1"
    for bad in (None, "", "   ", 5, "x" * 20_001):
        with pytest.raises(errors.BadRequest):
            sql_text(bad)
    assert row_limit(None, 10_000) == 1000 and row_limit(None, 50) == 50 and row_limit(7, 10) == 7
    for bad in (0, 11, True, "5", 2.0):
        with pytest.raises(errors.BadRequest):
            row_limit(bad, 10)


def test_repeated_result_columns_get_unique_names():
    assert unique_names(["a", "a", "b", "a", "a_2"]) == ["a", "a_2", "b", "a_3", "a_2_2"]


@pytest.mark.parametrize("token,connection,table,alias,sql", [
    ("pg:main:orders", "main", "orders", None, None),
    ('pg:Sales DB:my "odd" table', "Sales DB", 'my "odd" table', None, None),
    ("pg:main:a:b", "main", "a:b", None, None),
    ("pg:main:*", "main", None, None, None),
    ("pg:*", DEFAULT_CONNECTION, None, None, None),
    ("pg:table:orders", DEFAULT_CONNECTION, "orders", None, None),
    ("pg:query:top|select * from orders where a = 'x|y'", DEFAULT_CONNECTION, None, "top",
     "select * from orders where a = 'x|y'"),
])
def test_tokens_name_a_connection_and_a_table_or_query(token, connection, table, alias, sql):
    wanted = parse_token(token)
    assert (wanted.connection, wanted.table, wanted.alias, wanted.sql) == (connection, table, alias, sql)


@pytest.mark.parametrize("token", ["orders.csv", "pg:", "pg:main", "pg:main:", "pg:query:top", "pg:query:|select 1",
                                   "pg:query:top|", "pg:bad/name:t", "pg:main:bad\x00table", 5, None])
def test_malformed_tokens_are_bad_requests(token):
    with pytest.raises(errors.BadRequest):
        parse_token(token)
