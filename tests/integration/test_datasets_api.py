"""The v1 datasets API end to end through the function: formats, reads, deletes, and bad input."""

from __future__ import annotations

import io
import json

import polars as pl
import pytest

from tests.documents import two_sheet_book
from tests.integration.conftest import assert_error

SALES = b"region;month;revenue\nNorth;2024-01;120.5\nSouth;2024-01;80\nNorth;2024-02;130\n"




def all_blob_keys(ctx) -> list[str]:
    return [info.key for info in ctx.blobs.list("")]


def test_upload_parses_semicolon_csv_into_real_columns(alice):
    response = alice.upload("Sales Team", ("sales.csv", SALES))
    assert response.status_code == 201, response.get_json()
    item = response.get_json()["items"][0]
    assert item["domain"] == "sales-team" and item["name"] == "sales.csv" and item["kind"] == "table"
    table = item["tables"][0]
    assert table["rows"] == 3
    assert [c["name"] for c in table["columns"]] == ["region", "month", "revenue"]
    assert item["version"] and item["size_bytes"] == len(SALES)


def test_list_preview_download_and_domains(alice):
    alice.upload("sales", ("sales.csv", SALES))
    listing = alice.get("/api/v1/datasets?domain=sales").get_json()["items"]
    assert [d["name"] for d in listing] == ["sales.csv"]

    preview = alice.get("/api/v1/datasets/sales/sales.csv?n=2").get_json()
    assert preview["rows"] == [{"region": "North", "month": "2024-01", "revenue": 120.5},
                               {"region": "South", "month": "2024-01", "revenue": 80.0}]
    assert preview["row_count"] == 3

    csv = alice.get("/api/v1/datasets/sales/sales.csv?format=csv")
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    assert csv.get_data(as_text=True).splitlines()[0] == "region,month,revenue"
    as_json = json.loads(alice.get("/api/v1/datasets/sales/sales.csv?format=json").get_data())
    assert len(as_json) == 3 and as_json[2]["revenue"] == 130.0
    parquet = alice.get("/api/v1/datasets/sales/sales.csv?format=parquet").get_data()
    assert pl.read_parquet(io.BytesIO(parquet)).shape == (3, 3)
    assert alice.get("/api/v1/datasets/sales/sales.csv?format=original").get_data() == SALES

    domains = alice.get("/api/v1/domains").get_json()["items"]
    assert [(d["domain"], d["datasets"]) for d in domains] == [("sales", ["sales.csv"])]


def test_excel_every_sheet_is_a_table(alice):
    response = alice.upload("stock", ("book.xlsx", two_sheet_book()))
    assert response.status_code == 201, response.get_json()
    tables = response.get_json()["items"][0]["tables"]
    assert [(t["name"], t["rows"]) for t in tables] == [("book.xlsx#Q1", 1), ("book.xlsx#Q2", 2)]
    sheet = alice.get("/api/v1/datasets/stock/book.xlsx%23Q2?n=10").get_json()
    assert [row["sku"] for row in sheet["rows"]] == ["B", "C"]


def test_multiple_files_in_one_upload(alice):
    response = alice.upload("multi", ("a.csv", b"x\n1\n"), ("b.csv", b"y\n2\n"))
    assert response.status_code == 201
    assert [i["name"] for i in response.get_json()["items"]] == ["a.csv", "b.csv"]


def test_reupload_replaces_version_and_leaves_no_orphan_blob(alice, ctx):
    first = alice.upload("sales", ("sales.csv", SALES)).get_json()["items"][0]
    keys_after_first = all_blob_keys(ctx)
    second = alice.upload("sales", ("sales.csv", SALES + b"West;2024-03;10\n")).get_json()["items"][0]
    assert second["version"] != first["version"]
    assert second["created_at"] == first["created_at"]
    assert alice.get("/api/v1/datasets/sales/sales.csv?n=10").get_json()["row_count"] == 4
    keys = all_blob_keys(ctx)
    assert len(keys) == len(keys_after_first)
    assert all(second["version"] in key for key in keys)


def test_delete_one_then_domain(alice, ctx):
    alice.upload("sales", ("a.csv", b"x\n1\n"), ("b.csv", b"x\n2\n"))
    assert alice.delete("/api/v1/datasets/sales/a.csv").status_code == 200
    assert alice.get("/api/v1/datasets/sales/a.csv").status_code == 404
    deleted = alice.delete("/api/v1/datasets/sales").get_json()
    assert deleted == {"deleted": ["b.csv"], "count": 1}
    assert alice.get("/api/v1/datasets?domain=sales").get_json()["items"] == []
    assert all_blob_keys(ctx) == []


def test_attachment_keeps_text(alice):
    from tests.documents import pdf_with_text

    response = alice.upload("docs", ("report.pdf", pdf_with_text(["Revenue grew 12 percent"])))
    assert response.status_code == 201, response.get_json()
    item = response.get_json()["items"][0]
    assert item["kind"] == "attachment" and item["tables"] == [] and item["text_chars"] > 0
    text = alice.get("/datasets/docs/report.pdf?as=text").get_json()["text"]
    assert "Revenue grew 12 percent" in text
    assert alice.get("/datasets/docs/report.pdf").get_data().startswith(b"%PDF")


@pytest.mark.parametrize("domain,files,status,code", [
    (None, [("a.csv", b"x\n1\n")], 400, "MISSING_FIELD"),
    ("d", [], 400, "NO_FILE"),
    ("d", [("empty.csv", b"")], 400, "EMPTY_FILE"),
    ("d", [("a.exe", b"MZ\x90\x00")], 400, "UNSUPPORTED_FORMAT"),
    ("d", [("fake.xlsx", b"a,b\n1,2\n")], 400, "CONTENT_MISMATCH"),
    ("d", [("../../etc/passwd.csv", b"a\n1\n")], 400, "INVALID_NAME"),
    ("d", [("sub/dir.csv", b"a\n1\n")], 400, "INVALID_NAME"),
    ("d", [("x" * 125 + ".csv", b"a\n1\n")], 400, "INVALID_NAME"),
    ("..", [("a.csv", b"a\n1\n")], 400, "INVALID_NAME"),
    ("d" * 129, [("a.csv", b"a\n1\n")], 400, "INVALID_NAME"),
    ("d", [("good.csv", b"a\n1\n"), ("bad.csv", b"")], 400, "EMPTY_FILE"),
])
def test_bad_uploads_are_4xx_and_change_nothing(alice, ctx, domain, files, status, code):
    response = alice.upload(domain, *files)
    assert response.status_code == status, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == code and error["message"]
    assert alice.get("/api/v1/datasets").get_json()["items"] == []
    assert all_blob_keys(ctx) == []


def test_oversize_upload_is_413_while_streaming(alice, ctx):
    bootstrap_settings = ctx.settings
    ctx.settings = bootstrap_settings.replace(max_upload_bytes=1000)
    response = alice.upload("d", ("big.csv", b"a,b\n" + b"1,2\n" * 1000))
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert all_blob_keys(ctx) == []


@pytest.mark.parametrize("path", ["/api/v1/datasets", "/api/v1/postgres/db/tables/t", "/speech-to-text"])
def test_a_form_part_without_a_name_is_400(alice, path):
    body = (b'--b\r\nContent-Disposition: form-data; name=""\r\n\r\nnull\r\n'
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\na\n1\n\r\n--b--\r\n')
    response = alice.request("PUT" if "postgres" in path else "POST", path, data=body,
                             content_type="multipart/form-data; boundary=b")
    assert response.status_code == 400, response.get_data(as_text=True)
    assert "needs a name" in response.get_data(as_text=True)


def test_non_multipart_upload_is_415(alice):
    response = alice.request("POST", "/api/v1/datasets", data=b"a,b", content_type="text/csv")
    assert response.status_code == 415


@pytest.mark.parametrize("path", ["/api/v1/datasets/sales/nope.csv", "/api/v1/datasets/nope/x.csv?format=csv"])
def test_missing_dataset_is_404(alice, path):
    response = alice.get(path)
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "DATASET_NOT_FOUND"


def test_bad_query_parameters_are_400(alice):
    alice.upload("sales", ("sales.csv", SALES))
    assert alice.get("/api/v1/datasets/sales/sales.csv?n=abc").status_code == 400
    bad_format = alice.get("/api/v1/datasets/sales/sales.csv?format=xml")
    assert bad_format.status_code == 400
    error = bad_format.get_json()["error"]
    assert "original, csv, json, parquet" in error["message"] and "'xml'" in error["message"]
    assert error["details"] == {"accepted": ["original", "csv", "json", "parquet"]}


@pytest.mark.parametrize(("encoding", "charset"), [("cp1252", "windows-1252"), ("utf-8", "utf-8"),
                                                   ("utf-16", "utf-16")])
def test_the_original_is_served_in_the_charset_it_was_read_in(alice, encoding, charset):
    content = "name;city\nJosé;München\nRené;Zürich\n".encode(encoding)
    item = alice.upload("people", ("people.csv", content)).get_json()["items"][0]
    assert item["content_type"] == f"text/csv; charset={charset}"
    original = alice.get("/api/v1/datasets/people/people.csv?format=original")
    assert original.headers.getlist("Content-Type") == [f"text/csv; charset={charset}"]
    assert original.get_data() == content  # the bytes as uploaded, not a UTF-8 copy
    assert original.get_data().decode(original.mimetype_params["charset"]).startswith("name;city")


def test_an_original_uploaded_before_charsets_were_recorded_claims_none(alice, ctx):
    alice.upload("people", ("people.csv", "name\nJosé\n".encode("cp1252")))
    record = ctx.metadata.get("datasets", "alice", "people/people.csv")
    ctx.metadata.put("datasets", "alice", record.key, {**record.data, "content_type": "text/csv"}, parent="people",
                     expected_revision=record.revision)
    original = alice.get("/api/v1/datasets/people/people.csv?format=original")
    assert original.headers.getlist("Content-Type") == ["text/csv"]  # no claim rather than a wrong one


def test_numbers_written_with_separators_are_read_and_the_upload_says_how(alice):
    content = "item;price;units\nA;1.200,50;1\u00a0200\nB;950,00;2\u00a0500\n".encode()
    item = alice.upload("shop", ("prices.csv", content)).get_json()["items"][0]
    assert item["warnings"] == ["numbers written like 1.234,56 read as 1234.56 in column(s) 'price'",
                                "numbers written like 1 234 read as 1234 in column(s) 'units'"]
    rows = alice.get("/api/v1/datasets/shop/prices.csv?n=5").get_json()["rows"]
    assert rows == [{"item": "A", "price": 1200.5, "units": 1200}, {"item": "B", "price": 950.0, "units": 2500}]


def test_a_header_only_file_is_accepted_with_a_warning(alice):
    response = alice.upload("empty", ("header.csv", b"region,revenue\n"))
    assert response.status_code == 201, response.get_json()
    item = response.get_json()["items"][0]
    assert item["tables"][0]["rows"] == 0 and [c["name"] for c in item["tables"][0]["columns"]] == [
        "region", "revenue"]
    assert item["warnings"] == ["no rows: 'header.csv' has column names but no data"]


def test_deleting_a_domain_that_holds_nothing_is_404_and_changes_nothing(alice, ctx):
    alice.upload("sales", ("a.csv", b"x\n1\n"))
    assert_error(alice.delete("/api/v1/datasets/nowhere"), 404, "DOMAIN_NOT_FOUND")
    assert_error(alice.delete("/api/v1/datasets/sales/nope.csv"), 404, "DATASET_NOT_FOUND")
    assert [d["name"] for d in alice.get("/api/v1/datasets").get_json()["items"]] == ["a.csv"]
    assert alice.delete("/api/v1/datasets/sales").get_json() == {"deleted": ["a.csv"], "count": 1}
    assert_error(alice.delete("/api/v1/datasets/sales"), 404, "DOMAIN_NOT_FOUND")  # deleted: gone


def test_no_identity_is_401(client):
    response = client.get("/api/v1/datasets")
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "UNAUTHENTICATED"
