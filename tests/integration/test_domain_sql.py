"""SQL over a domain through the datasets function: tables by SQL name, queries across files and sheets,
rejected SQL, limits, and tenants that cannot see each other's domains."""

from __future__ import annotations

import pytest

from tests.documents import two_sheet_book

SALES = b"region;month;revenue\nNorth;2024-01;120.5\nSouth;2024-01;80\nNorth;2024-02;130\n"




def sql(api, query: str, domain: str = "shop", **fields):
    return api.request("POST", f"/api/v1/domains/{domain}/sql", json={"sql": query, **fields})


@pytest.fixture
def shop(alice):
    response = alice.upload("Shop", ("Sales 2024.csv", SALES), ("book.xlsx", two_sheet_book()))
    assert response.status_code == 201, response.get_json()
    return alice


def test_tables_lists_every_sheet_and_file_under_its_sql_name(shop):
    response = shop.get("/api/v1/domains/shop/tables")
    assert response.status_code == 200, response.get_json()
    tables = response.get_json()["tables"]
    assert [(t["name"], t["dataset"], t["table"], t["rows"]) for t in tables] == [
        ("book_q1", "book.xlsx", "book.xlsx#Q1", 1), ("book_q2", "book.xlsx", "book.xlsx#Q2", 2),
        ("sales_2024", "Sales 2024.csv", "Sales 2024.csv", 3)]
    assert [c["name"] for c in tables[2]["columns"]] == ["region", "month", "revenue"]
    assert all(c["dtype"] for t in tables for c in t["columns"])


def test_one_query_reads_a_csv_and_both_sheets(shop):
    response = sql(shop, "SELECT (SELECT SUM(revenue) FROM sales_2024) AS revenue, "
                         "(SELECT SUM(units) FROM book_q1) + (SELECT SUM(units) FROM book_q2) AS units")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["rows"] == [{"revenue": 330.5, "units": 15}]
    assert body["tables"] == {"book_q1": "book.xlsx#Q1", "book_q2": "book.xlsx#Q2", "sales_2024": "Sales 2024.csv"}
    assert (body["row_count"], body["truncated"]) == (1, False)
    assert [c["name"] for c in body["columns"]] == ["revenue", "units"] and body["elapsed_ms"] > 0


def test_the_sql_that_ran_is_returned_normalised_and_runs_again(shop):
    first = sql(shop, 'select REGION, sum(Revenue) as total from SALES_2024 where Region = "North" group by 1')
    assert first.status_code == 200, first.get_json()
    body = first.get_json()
    assert body["rows"] == [{"region": "North", "total": 250.5}]
    assert body["sql"] == "SELECT region, SUM(revenue) AS total FROM sales_2024 WHERE region = 'North' GROUP BY 1"
    assert sql(shop, body["sql"]).get_json()["rows"] == body["rows"]
    assert body["tables"] == {"sales_2024": "Sales 2024.csv"}


def test_limit_cuts_rows_and_says_so(shop):
    body = sql(shop, "SELECT sku FROM book_q2 UNION ALL SELECT sku FROM book_q1 ORDER BY sku", limit=2).get_json()
    assert body["rows"] == [{"sku": "A"}, {"sku": "B"}]
    assert (body["row_count"], body["truncated"]) == (2, True)


def test_the_row_cap_setting_bounds_limit_and_its_default(shop, ctx):
    ctx.settings = ctx.settings.replace(sql_max_rows=2)
    assert sql(shop, "SELECT * FROM sales_2024", limit=3).status_code == 400
    body = sql(shop, "SELECT * FROM sales_2024").get_json()
    assert (body["row_count"], body["truncated"]) == (2, True)


@pytest.mark.parametrize("query,message", [
    ("DROP TABLE sales_2024", "only SELECT queries are allowed, got DROP"),
    ("SELECT * FROM read_csv('/etc/passwd')", "function read_csv is not allowed"),
    ("SELECT * FROM sales", "unknown table 'sales'; tables: book_q1, book_q2, sales_2024"),
    ("SELECT 1; DELETE FROM book_q1", "exactly one statement is allowed, got 2"),
])
def test_rejected_sql_is_400_with_the_reason_and_changes_nothing(shop, query, message):
    response = sql(shop, query)
    assert response.status_code == 400
    assert response.get_json()["error"] == {"code": "SQL_REJECTED", "message": message, "details": {}}
    assert sql(shop, "SELECT COUNT(*) AS n FROM sales_2024").get_json()["rows"] == [{"n": 3}]


def test_a_query_duckdb_cannot_bind_is_400_with_its_hint(shop):
    error = sql(shop, "SELECT revenu FROM sales_2024").get_json()["error"]
    assert error["code"] == "SQL_ERROR"
    assert 'Referenced column "revenu" not found' in error["message"] and '"revenue"' in error["message"]


@pytest.mark.parametrize("body,fragment", [
    ({}, "'sql' is required"),
    ({"sql": ""}, "non-empty string"),
    ({"sql": 42}, "non-empty string"),
    ({"sql": "SELECT 1 " + " " * 20_000}, "at most 20000 characters"),
    ({"sql": "SELECT 1", "limit": 0}, "'limit' must be an integer from 1 to 10000"),
    ({"sql": "SELECT 1", "limit": 10_001}, "'limit' must be an integer"),
    ({"sql": "SELECT 1", "limit": "5"}, "'limit' must be an integer"),
    ({"sql": "SELECT 1", "limit": True}, "'limit' must be an integer"),
])
def test_bad_bodies_are_400_before_anything_runs(alice, body, fragment):
    # alice has no domain at all: a 400 here proves the body is checked before any lookup.
    response = alice.request("POST", "/api/v1/domains/shop/sql", json=body)
    assert response.status_code == 400
    assert fragment in response.get_json()["error"]["message"]


def test_a_reupload_is_what_the_next_query_reads(shop):
    assert shop.upload("shop", ("Sales 2024.csv", SALES + b"West;2024-03;10\n")).status_code == 201
    assert sql(shop, "SELECT COUNT(*) AS n FROM sales_2024").get_json()["rows"] == [{"n": 4}]


def test_another_tenant_cannot_see_or_query_the_domain(shop, bob):
    for response in (bob.get("/api/v1/domains/shop/tables"), sql(bob, "SELECT * FROM sales_2024")):
        assert response.status_code == 404
        assert response.get_json()["error"]["code"] == "DOMAIN_NOT_FOUND"


def test_unknown_domain_and_attachment_only_domain_are_404(alice):
    from tests.documents import pdf_with_text

    assert sql(alice, "SELECT 1", domain="nowhere").get_json()["error"]["code"] == "DOMAIN_NOT_FOUND"
    assert alice.upload("docs", ("report.pdf", pdf_with_text(["hello"]))).status_code == 201
    response = alice.get("/api/v1/domains/docs/tables")
    assert response.status_code == 404
    assert response.get_json()["error"] == {"code": "NO_TABLES", "details": {},
                                            "message": "domain 'docs' has no tables to query, only attachments"}
