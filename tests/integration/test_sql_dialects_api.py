"""The SQL endpoint reads other dialects over HTTP: it says which it read, what it rewrote, and what ran."""

from __future__ import annotations

import pytest

SALES = b"region;month;revenue\nNorth;2024-01;120.5\nSouth;2024-01;80\nNorth;2024-02;130\n"


def sql(api, query: str, **fields):
    return api.request("POST", "/api/v1/domains/shop/sql", json={"sql": query, **fields})


@pytest.fixture
def shop(alice):
    response = alice.upload("Shop", ("Sales 2024.csv", SALES))
    assert response.status_code == 201, response.get_json()
    return alice


def test_mysql_sql_is_transpiled_and_the_sql_that_ran_is_returned(shop):
    response = sql(shop, "SELECT `month` FROM sales_2024 ORDER BY revenue DESC LIMIT 1, 1", dialect="mysql")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["rows"] == [{"month": "2024-01"}] and body["dialect"] == "mysql"
    assert body["sql"] == 'SELECT "month" FROM sales_2024 ORDER BY revenue DESC LIMIT 1 OFFSET 1'
    assert body["rewrites"] == ["transpiled from mysql to duckdb"]


def test_a_bare_column_beside_max_is_the_max_rows_value_and_the_rewrite_is_reported(shop):
    body = sql(shop, "SELECT region, month, MAX(revenue) AS top FROM sales_2024 GROUP BY region ORDER BY region",
               dialect="sqlite").get_json()
    assert body["rows"] == [{"region": "North", "month": "2024-02", "top": 130.0},
                            {"region": "South", "month": "2024-01", "top": 80.0}]
    assert body["rewrites"] == ["transpiled from sqlite to duckdb",
                                "column month is neither grouped nor aggregated: read as ARG_MAX(month, revenue)"]
    assert sql(shop, body["sql"]).get_json()["rows"] == body["rows"]


def test_duckdb_is_the_default_and_reports_no_rewrite(shop):
    body = sql(shop, "SELECT COUNT(*) AS n FROM sales_2024").get_json()
    assert (body["rows"], body["dialect"], body["rewrites"]) == ([{"n": 3}], "duckdb", [])


def test_a_write_in_another_dialect_is_still_refused(shop):
    response = sql(shop, "DELETE FROM sales_2024", dialect="postgres")
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "SQL_REJECTED"
    assert sql(shop, "SELECT COUNT(*) AS n FROM sales_2024").get_json()["rows"] == [{"n": 3}]


@pytest.mark.parametrize("dialect", ["oracle9", 7])
def test_an_unknown_dialect_is_400_naming_the_accepted_ones(alice, dialect):
    response = sql(alice, "SELECT 1", dialect=dialect)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "UNKNOWN_DIALECT" and "duckdb" in error["message"] and "sqlite" in error["message"]
