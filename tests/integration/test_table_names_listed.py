"""Every listing of datasets and tables says the name SQL reads each table by, that name is what the domain's SQL
accepts, and a listing stays one metadata read however many datasets the domain holds.

Names are domain-wide: "SALES 2024.tsv" and "Sales 2024.csv" both want ``sales_2024``; the first in sorted order
gets it and the other ``sales_2024_2``. Each table holds a different number of rows, so counting its rows through
the domain SQL endpoint shows the name reaches that table and no other.
"""

from __future__ import annotations

import pytest

from tests.documents import pdf_with_text, two_sheet_book

CSV = b"region,revenue\nNorth,120\nSouth,80\nNorth,130\n"  # 3 rows
TSV = b"region\trevenue\nNorth\t1\n"  # 1 row
EXPECTED = {"SALES 2024.tsv": "sales_2024", "Sales 2024.csv": "sales_2024_2", "book.xlsx#Q1": "book_q1",
            "book.xlsx#Q2": "book_q2"}
ROWS = {"sales_2024": 1, "sales_2024_2": 3, "book_q1": 1, "book_q2": 2}


@pytest.fixture
def shop(alice):
    response = alice.upload("shop", ("Sales 2024.csv", CSV), ("SALES 2024.tsv", TSV), ("book.xlsx", two_sheet_book()),
                            ("notes.pdf", pdf_with_text(["Targets rose"])))
    assert response.status_code == 201, response.get_json()
    # The upload's answer names them too, domain-wide as listings do.
    assert names_of_datasets(response.get_json()["items"]) == EXPECTED
    other = alice.upload("other", ("Sales 2024.csv", CSV))  # another domain's names are its own
    assert other.status_code == 201, other.get_json()
    assert names_of_datasets(other.get_json()["items"]) == {"Sales 2024.csv": "sales_2024"}
    return alice


def count_rows(api, table_name: str) -> int:
    response = api.request("POST", "/api/v1/domains/shop/sql", json={"sql": f"SELECT COUNT(*) AS n FROM {table_name}"})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["rows"][0]["n"]


def names_of_datasets(items: list[dict]) -> dict[str, str]:
    """{table: table_name} from v1 dataset views, checking each dataset's table_names against its tables."""
    names = {}
    for item in items:
        assert item["table_names"] == [table["table_name"] for table in item["tables"]]
        names.update({table["name"]: table["table_name"] for table in item["tables"]})
    return names


def test_every_v1_listing_names_tables_as_sql_reads_them(shop):
    everything = shop.get("/api/v1/datasets").get_json()["items"]
    assert names_of_datasets([item for item in everything if item["domain"] == "shop"]) == EXPECTED
    assert names_of_datasets([item for item in everything if item["domain"] == "other"]) == \
        {"Sales 2024.csv": "sales_2024"}
    listing = shop.get("/api/v1/datasets?domain=shop").get_json()["items"]
    assert names_of_datasets(listing) == EXPECTED
    assert next(item for item in listing if item["name"] == "notes.pdf")["table_names"] == []

    for name in ("Sales 2024.csv", "SALES 2024.tsv", "book.xlsx", "notes.pdf"):
        described = shop.get(f"/api/v1/datasets/shop/{name}?n=0").get_json()
        assert names_of_datasets([described]) == {t: n for t, n in EXPECTED.items() if t.split("#")[0] == name}
    preview = shop.get("/api/v1/datasets/shop/book.xlsx%23Q2?n=5").get_json()
    assert (preview["table"], preview["table_name"], len(preview["rows"])) == ("book.xlsx#Q2", "book_q2", 2)
    assert shop.get("/api/v1/datasets/shop/Sales 2024.csv").get_json()["table_name"] == "sales_2024_2"

    tables = shop.get("/api/v1/domains/shop/tables").get_json()["tables"]
    assert {t["table"]: t["table_name"] for t in tables} == EXPECTED
    assert all(t["table_name"] == t["name"] for t in tables)
    domains = {d["domain"]: d["table_names"] for d in shop.get("/api/v1/domains").get_json()["items"]}
    assert domains == {"shop": sorted(EXPECTED.values()), "other": ["sales_2024"]}

    for table in tables:  # each listed name is one SQL accepts, and it reads that table
        assert count_rows(shop, table["table_name"]) == table["rows"] == ROWS[table["table_name"]]


@pytest.mark.parametrize("path", ["/datasets?domain=shop", "/datasets/shop/all", "/domains/shop/datasets",
                                  "/datasets"])
def test_every_legacy_listing_names_each_datasets_tables(shop, path):
    response = shop.get(path)
    assert response.status_code == 200 and response.headers["Deprecation"] == "true"
    body = response.get_json()
    items = {item["filename"]: item for item in body["datasets"] if item["domain"] == "shop"}
    assert body["items"] == body["datasets"] and set(items) == {"Sales 2024.csv", "SALES 2024.tsv", "book.xlsx",
                                                                "notes.pdf"}
    assert {name: item["table_names"] for name, item in items.items()} == {
        "Sales 2024.csv": ["sales_2024_2"], "SALES 2024.tsv": ["sales_2024"], "book.xlsx": ["book_q1", "book_q2"],
        "notes.pdf": []}
    assert {"filename", "size", "updated", "signed_url"} <= set(items["book.xlsx"])  # the original's shape kept
    for name in items["book.xlsx"]["table_names"] + items["SALES 2024.tsv"]["table_names"]:
        assert count_rows(shop, name) == ROWS[name]


def test_a_listing_is_one_metadata_read_however_many_datasets(alice, ctx, monkeypatch):
    calls: list[str] = []
    for method in ("get", "list"):
        original = getattr(ctx.metadata, method)

        def counted(*args, _original=original, _method=method, **kwargs):
            calls.append(_method)
            return _original(*args, **kwargs)

        monkeypatch.setattr(ctx.metadata, method, counted)

    def reads(path: str) -> list[str]:
        calls.clear()
        response = alice.get(path)
        assert response.status_code == 200, response.get_json()
        return sorted(calls)

    paths = ["/api/v1/datasets?domain={d}", "/api/v1/datasets", "/api/v1/domains", "/api/v1/domains/{d}/tables",
             "/api/v1/datasets/{d}/f0.csv?n=0", "/datasets/{d}/all", "/domains/{d}/datasets"]
    alice.upload("small", ("f0.csv", CSV))
    small = {path: reads(path.format(d="small")) for path in paths}
    alice.upload("large", *[(f"f{index}.csv", CSV) for index in range(12)])
    large = {path: reads(path.format(d="large")) for path in paths}
    assert large == small
    assert small["/api/v1/datasets?domain={d}"] == ["list"] and small["/datasets/{d}/all"] == ["list"]
    assert small["/api/v1/datasets/{d}/f0.csv?n=0"] == ["get", "list"]
