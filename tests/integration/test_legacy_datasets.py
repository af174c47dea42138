"""The original API's dataset routes: the frontend's calls, in its order, with the shapes it reads."""

from __future__ import annotations

import io

import pytest

SALES = b"region\trevenue\nNorth\t120\nSouth\t80\n"


def test_frontend_upload_flow_twice_then_list(alice):
    first = alice.upload(None, ("sales.csv", SALES), path="/upload_datasets/Campaign", field="files")
    assert first.status_code == 201, first.get_json()
    assert first.headers["Deprecation"] == "true" and "successor-version" in first.headers["Link"]
    assert first.get_json()["items"][0]["filename"] == "sales.csv"
    # The same file again through the second route, with a percent-encoded domain field: must overwrite.
    second = alice.upload("Campaign", ("sales.csv", SALES), path="/datasets/upload")
    assert second.status_code == 201
    assert set(second.get_json()) == {"filename", "gs_uri", "signed_url", "size_bytes"}

    body = alice.get("/datasets?domain=Campaign").get_json()
    assert body["items"] == body["datasets"] and len(body["items"]) == 1
    item = body["items"][0]
    assert item["filename"] == "sales.csv" and item["domain"] == "campaign"
    assert item["size_bytes"] == item["size"] == len(SALES)
    assert item["updated"].startswith("20") and isinstance(item["signed_url"], str)


def test_percent_encoded_form_domain_is_the_same_domain(alice):
    alice.upload("My%20Domain", ("a.csv", b"x\n1\n"), path="/datasets/upload")
    assert [i["filename"] for i in alice.get("/datasets?domain=My Domain").get_json()["items"]] == ["a.csv"]


def test_raw_body_upload_uses_filename_parameter(alice):
    response = alice.request("POST", "/upload_datasets/raw?filename=raw.csv", data=b"a,b\n1,2\n",
                             content_type="text/csv")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["items"][0]["filename"] == "raw.csv"


def test_raw_body_upload_refuses_traversal_in_filename_header(alice):
    response = alice.request("POST", "/upload_datasets/raw", data=b"a,b\n1,2\n", content_type="text/csv",
                             headers={"X-Filename": "../../../tmp/evil.csv"})
    assert response.status_code == 400
    assert "detail" in response.get_json()


def test_records_csv_and_text_reads(alice):
    alice.upload("campaign", ("sales.csv", SALES))
    records = alice.get("/datasets/campaign/sales.csv").get_json()["records"]
    assert records == [{"region": "North", "revenue": 120}, {"region": "South", "revenue": 80}]
    assert list(records[0]) == ["region", "revenue"]  # file order, not alphabetical
    assert len(alice.get("/datasets/campaign/sales.csv?n=1").get_json()["records"]) == 1
    csv = alice.get("/datasets/campaign/sales.csv?as=csv")
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    assert csv.get_data(as_text=True).splitlines() == ["region,revenue", "North,120", "South,80"]


def test_excel_is_readable_as_csv(alice):
    import openpyxl

    book = openpyxl.Workbook()
    book.active.append(["a", "b"])
    book.active.append([1, 2])
    buffer = io.BytesIO()
    book.save(buffer)
    alice.upload("x", ("book.xlsx", buffer.getvalue()), path="/datasets/upload")
    assert alice.get("/datasets/x/book.xlsx?as=csv").get_data(as_text=True).splitlines() == ["a,b", "1,2"]


def test_metadata_put_is_saved(alice):
    alice.upload("campaign", ("sales.csv", SALES))
    body = {"description": "Q3 sales", "columns": [{"name": "revenue", "type": "float", "description": "IDR"}]}
    response = alice.request("PUT", "/datasets/campaign/sales.csv/metadata", json=body)
    assert response.status_code == 200, response.get_json()
    view = alice.get("/api/v1/datasets/campaign/sales.csv?n=0").get_json()
    assert view["description"] == "Q3 sales" and view["column_notes"][0]["description"] == "IDR"


def test_domains_and_deletes(alice):
    alice.upload("campaign", ("a.csv", b"x\n1\n"), ("b.csv", b"x\n2\n"))
    assert alice.get("/domains").get_json() == {"campaign": ["a.csv", "b.csv"]}
    assert [i["filename"] for i in alice.get("/domains/campaign/datasets/").get_json()["datasets"]] == \
        ["a.csv", "b.csv"]
    assert alice.delete("/datasets/campaign/a.csv").get_json() == \
        {"deleted": True, "domain": "campaign", "filename": "a.csv"}
    assert alice.delete("/datasets/campaign/all").get_json() == {"deleted": ["b.csv"], "count": 1}
    assert alice.get("/domains").get_json() == {}
    # Unlike v1's 404: the frontend deletes domains it keeps itself and needs a 2xx (FRONTEND_CONTRACT D7).
    again = alice.delete("/datasets/campaign/all")
    assert again.status_code == 200 and again.get_json() == {"deleted": [], "count": 0}


@pytest.mark.parametrize("path", ["/datasets/campaign/nope.csv", "/datasets/campaign/..%2f..%2fetc%2fpasswd"])
def test_missing_or_traversal_is_4xx_in_legacy_shape(alice, path):
    response = alice.get(path)
    assert response.status_code in (400, 404)
    assert set(response.get_json()) == {"detail", "code"}


def test_missing_fields_message_is_the_originals(alice):
    response = alice.request("POST", "/datasets/upload", data={"domain": "x"}, content_type="multipart/form-data")
    assert response.status_code == 400
    assert response.get_json()["detail"] == "Missing 'domain' or 'file'"


def test_preflight_for_delete_is_answered(client):
    response = client.open("/datasets/campaign/a.csv", method="OPTIONS",
                           headers={"Origin": "http://localhost:5173", "Access-Control-Request-Method": "DELETE"})
    assert response.status_code == 204
    assert "DELETE" in response.headers["Access-Control-Allow-Methods"]
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_listed_tables_carry_a_signed_csv_link_the_frontend_can_fetch(client, ctx):
    from common import bootstrap
    from common.signing import generate_secret
    from tests.integration.conftest import Api

    bootstrap.use(bootstrap.build(ctx.settings.replace(url_signing_secret=generate_secret()), clock=ctx.clock,
                                  blobs=ctx.blobs, metadata=ctx.metadata))
    alice = Api(client, "alice")
    alice.upload("Campaign", ("sales 2024.csv", SALES))
    # Absolute: the KPI page fetches it from its own origin, where a bare path would be the page's index.html.
    link = alice.get("/datasets?domain=campaign").get_json()["datasets"][0]["signed_url"]
    assert link.startswith("http://localhost/files/datasets/alice/campaign/sales%202024.csv?")
    fetched = client.get(link)  # no identity: the signature is the permission
    assert fetched.status_code == 200 and fetched.get_data(as_text=True).splitlines()[0] == "region,revenue"
    assert client.get(link.replace("/alice/", "/bob/")).status_code == 403
    assert client.get(link.split("?")[0]).status_code == 403
    # The host the caller reached; forwarding headers a caller could write are not believed here (AUTH_MODE=dev).
    forged = {"Host": "api.example.test:8443", "X-Forwarded-Host": "evil.test", "X-Forwarded-Proto": "https"}
    link = alice.get("/datasets?domain=campaign", headers=forged).get_json()["datasets"][0]["signed_url"]
    assert link.startswith("http://api.example.test:8443/files/datasets/alice/campaign/")


@pytest.mark.parametrize("forwarded, origin", [
    ({"X-Forwarded-Host": "api.example.test", "X-Forwarded-Proto": "https"}, "https://api.example.test"),
    # Appended to by each proxy: the last is the gateway's own, the one in front of the functions.
    ({"X-Forwarded-Host": "evil.test, api.example.test", "X-Forwarded-Proto": "http, https"},
     "https://api.example.test"),
    ({"X-Forwarded-Proto": "gopher"}, "http://fn.internal"),
    ({"X-Forwarded-Host": "bad host/<x>"}, ""),  # not a host name: the path alone, never markup in a URL
])
def test_behind_the_gateway_a_signed_link_names_the_host_the_browser_used(client, ctx, forwarded, origin):
    import base64
    import json

    from common import bootstrap
    from common.auth import GATEWAY_HEADER
    from common.signing import generate_secret

    bootstrap.use(bootstrap.build(ctx.settings.replace(url_signing_secret=generate_secret(), auth_mode="gateway"),
                                  clock=ctx.clock, blobs=ctx.blobs, metadata=ctx.metadata))
    identity = {GATEWAY_HEADER: base64.urlsafe_b64encode(json.dumps({"sub": "alice"}).encode()).decode(),
                "Host": "fn.internal"}
    upload = client.post("/datasets/upload", headers=identity, content_type="multipart/form-data",
                         data={"domain": "campaign", "file": (io.BytesIO(SALES), "sales.csv")})
    assert upload.status_code == 201, upload.get_json()
    listing = client.get("/datasets?domain=campaign", headers={**identity, **forwarded})
    link = listing.get_json()["datasets"][0]["signed_url"]
    assert link.startswith(f"{origin}/files/datasets/alice/campaign/sales.csv?"), link


def test_a_configured_public_origin_names_signed_links_whatever_the_request_says(client, ctx):
    from common import bootstrap
    from common.signing import generate_secret
    from tests.integration.conftest import Api

    settings = ctx.settings.replace(url_signing_secret=generate_secret(), public_base_url="https://api.example.test/")
    bootstrap.use(bootstrap.build(settings, clock=ctx.clock, blobs=ctx.blobs, metadata=ctx.metadata))
    alice = Api(client, "alice")
    alice.upload("Campaign", ("sales.csv", SALES))
    listing = alice.get("/datasets?domain=campaign", headers={"Host": "fn.internal", "X-Forwarded-Host": "x.test"})
    link = listing.get_json()["datasets"][0]["signed_url"]
    assert link.startswith("https://api.example.test/files/datasets/alice/campaign/sales.csv?"), link
