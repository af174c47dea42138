"""An answer names what its SQL read, and only that: each table by the name the SQL used, with its dataset and the
version read, in the stored answer's provenance and in what the analyst is told.

The domain holds sales.csv, big.csv, big2.csv, a workbook and a document; the scripted planner writes the SQL.
"""

from __future__ import annotations

import pytest

from tests.documents import pdf_with_text, two_sheet_book

BIG = b"region,target\nNorth,200\nSouth,100\n"
BIG2 = b"region,target2\nNorth,1\nSouth,2\n"


@pytest.fixture
def shop(pipeline):
    pipeline.upload("shop")  # sales.csv
    pipeline.upload("shop", name="big.csv", content=BIG)
    pipeline.upload("shop", name="big2.csv", content=BIG2)
    pipeline.upload("shop", name="book.xlsx", content=two_sheet_book())
    pipeline.upload("shop", name="notes.pdf", content=pdf_with_text(["Targets were raised in March"]))
    return pipeline


def versions(api, domain: str = "shop") -> dict[str, str]:
    return {item["name"]: item["version"]
            for item in api.call("GET", f"/api/v1/datasets?domain={domain}").get_json()["items"]}


def ask(api, analyst, sql: str | None = None, **fields) -> dict:
    if sql is not None:
        analyst.default_sql = sql
    analyst.calls.clear()
    body = api.wait(api.ask("Compare revenue by region", domain="shop", **fields)["query_id"])
    assert body["status"] == "succeeded", body
    return body


def tables_read_line(analyst) -> str:
    prompt = next(messages[-1]["content"] for agent, messages, _ in analyst.calls if agent == "analyst")
    return next(line for line in prompt.splitlines() if line.startswith("Tables read:"))


def sales_entry(version: str) -> dict:
    return {"table_name": "sales", "dataset": "sales.csv", "table": "sales.csv", "sheet": None, "version": version}


def test_sql_that_reads_only_sales_names_only_sales(shop, analyst):
    body = ask(shop, analyst)  # the scripted planner's SQL: SUM(revenue) FROM sales
    provenance, version = body["answer"]["provenance"], versions(shop)["sales.csv"]
    assert provenance["datasets"] == {"sales.csv": version}
    assert provenance["tables"] == [sales_entry(version)]
    assert tables_read_line(analyst) == 'Tables read: sales (from "sales.csv")'


def test_a_join_names_both_tables(shop, analyst):
    body = ask(shop, analyst, "SELECT s.region, SUM(s.revenue) AS revenue, MAX(b.target) AS target FROM sales s "
                              "JOIN big b USING (region) GROUP BY s.region ORDER BY s.region")
    listed = versions(shop)
    provenance = body["answer"]["provenance"]
    assert provenance["datasets"] == {"big.csv": listed["big.csv"], "sales.csv": listed["sales.csv"]}
    assert provenance["tables"] == [
        {"table_name": "big", "dataset": "big.csv", "table": "big.csv", "sheet": None, "version": listed["big.csv"]},
        sales_entry(listed["sales.csv"])]
    assert tables_read_line(analyst) == 'Tables read: big (from "big.csv"); sales (from "sales.csv")'


def test_a_cte_is_not_a_table_even_when_it_is_named_like_one(shop, analyst):
    body = ask(shop, analyst, "WITH big AS (SELECT region, revenue FROM sales) "
                              "SELECT region, SUM(revenue) AS revenue FROM big GROUP BY region ORDER BY region")
    assert body["answer"]["table"]["rows"] == [{"region": "North", "revenue": 250}, {"region": "South", "revenue": 80}]
    assert body["answer"]["provenance"]["tables"] == [sales_entry(versions(shop)["sales.csv"])]
    assert tables_read_line(analyst) == 'Tables read: sales (from "sales.csv")'


def test_a_workbook_sheet_is_named_with_its_sheet(shop, analyst):
    body = ask(shop, analyst, "SELECT sku AS region, units AS revenue FROM Book_Q2 ORDER BY sku")
    provenance, version = body["answer"]["provenance"], versions(shop)["book.xlsx"]
    assert provenance["datasets"] == {"book.xlsx": version}
    assert provenance["tables"] == [{"table_name": "book_q2", "dataset": "book.xlsx", "table": "book.xlsx#Q2",
                                     "sheet": "Q2", "version": version}]
    assert tables_read_line(analyst) == 'Tables read: book_q2 (from "book.xlsx#Q2")'


def test_sql_that_reads_no_table_names_none(shop, analyst):
    body = ask(shop, analyst, "SELECT 'North' AS region, 1 AS revenue")
    assert body["answer"]["provenance"]["datasets"] == {} and body["answer"]["provenance"]["tables"] == []
    assert tables_read_line(analyst) == "Tables read: (none)"


def test_the_version_named_is_the_one_the_sql_read(shop, analyst):
    before = versions(shop)["sales.csv"]
    shop.upload("shop", content=b"region,revenue\nNorth,1\n")
    after = versions(shop)["sales.csv"]
    body = ask(shop, analyst)
    assert after != before and body["answer"]["table"]["rows"] == [{"region": "North", "revenue": 1}]
    assert body["answer"]["provenance"]["datasets"] == {"sales.csv": after}


def test_a_follow_up_that_reuses_the_result_names_what_that_result_read(shop, analyst):
    first = ask(shop, analyst)
    analyst.plan = {**analyst.plan, "sql": ""}  # the planner reuses the previous result: no SQL runs
    second = ask(shop, analyst, session_id=first["session_id"])
    assert [agent for agent, _, _ in analyst.calls if agent == "manipulator"] == []
    assert second["answer"]["provenance"]["tables"] == first["answer"]["provenance"]["tables"]
    assert second["answer"]["provenance"]["datasets"] == {"sales.csv": versions(shop)["sales.csv"]}
    assert tables_read_line(analyst) == 'Tables read: sales (from "sales.csv")'


def test_a_documents_only_answer_names_the_documents_it_was_given(pipeline, analyst):
    pipeline.upload("reports", name="q3.pdf", content=pdf_with_text(["Revenue grew 12 percent in Q3"]))
    pipeline.upload("reports", name="q4.pdf", content=pdf_with_text(["Revenue fell in Q4"]))
    body = pipeline.wait(pipeline.ask("What happened to revenue?", domain="reports")["query_id"])
    assert body["status"] == "succeeded", body
    assert body["answer"]["provenance"]["datasets"] == versions(pipeline, "reports")
    assert body["answer"]["provenance"]["tables"] == []
