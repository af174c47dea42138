"""Alice's datasets are invisible and untouchable to Bob, through every dataset route, v1 and legacy."""

from __future__ import annotations

import io

import pytest

SALES = b"region,revenue\nNorth,120\nSouth,80\n"

READS = [
    "/api/v1/datasets/sales/sales.csv",
    "/api/v1/datasets/sales/sales.csv?n=5",
    "/api/v1/datasets/sales/sales.csv?format=csv",
    "/api/v1/datasets/sales/sales.csv?format=original",
    "/datasets/sales/sales.csv",
    "/datasets/sales/sales.csv?as=csv",
    "/datasets/sales/sales.csv?as=text",
]
LISTINGS = [
    ("/api/v1/datasets", lambda body: body["items"]),
    ("/api/v1/datasets?domain=sales", lambda body: body["items"]),
    ("/api/v1/domains", lambda body: body["items"]),
    ("/datasets?domain=sales", lambda body: body["items"] + body["datasets"]),
    ("/datasets/sales/all", lambda body: body["items"]),
    ("/domains", lambda body: list(body)),
    ("/domains/sales/datasets", lambda body: body["items"]),
    ("/domains/sales/datasets/", lambda body: body["items"]),
]
DELETES = ["/api/v1/datasets/sales/sales.csv", "/api/v1/datasets/sales", "/datasets/sales/sales.csv",
           "/datasets/sales/all"]


@pytest.fixture
def alice_has_sales(alice):
    assert alice.upload("sales", ("sales.csv", SALES)).status_code == 201


def alice_still_has_everything(alice):
    assert alice.get("/api/v1/datasets/sales/sales.csv?format=original").get_data() == SALES


@pytest.mark.parametrize("path", READS)
def test_bob_cannot_read(alice, bob, alice_has_sales, path):
    assert bob.get(path).status_code == 404


@pytest.mark.parametrize("path,items", LISTINGS)
def test_bob_lists_nothing_of_alices(alice, bob, alice_has_sales, path, items):
    response = bob.get(path)
    assert response.status_code == 200
    assert items(response.get_json()) == []


@pytest.mark.parametrize("path", DELETES)
def test_bob_cannot_delete(alice, bob, alice_has_sales, path):
    response = bob.delete(path)
    assert response.status_code in (200, 404)
    if response.status_code == 200:  # a domain-wide delete of Bob's own (empty) domain
        assert response.get_json()["count"] == 0
    alice_still_has_everything(alice)


@pytest.mark.parametrize("path,field", [("/api/v1/datasets", "file"), ("/datasets/upload", "file"),
                                        ("/upload_datasets/sales", "files")])
def test_bob_uploading_the_same_name_writes_his_own_copy(alice, bob, alice_has_sales, path, field):
    response = bob.upload("sales" if "upload_datasets" not in path else None, ("sales.csv", b"x\n1\n"),
                          path=path, field=field)
    assert response.status_code == 201, response.get_json()
    alice_still_has_everything(alice)
    assert bob.get("/api/v1/datasets/sales/sales.csv?format=original").get_data() == b"x\n1\n"


def test_bob_cannot_edit_alices_metadata(alice, bob, alice_has_sales):
    response = bob.request("PUT", "/datasets/sales/sales.csv/metadata", json={"description": "mine", "columns": []})
    assert response.status_code == 404
    assert alice.get("/api/v1/datasets/sales/sales.csv?n=0").get_json()["description"] == ""


@pytest.mark.parametrize("path", ["/datasets?domain=sales&userId=alice", "/domains?userId=alice"])
def test_claiming_to_be_alice_is_forbidden(bob, alice_has_sales, path):
    assert bob.get(path).status_code == 403


def test_claiming_to_be_alice_in_a_body_or_form_is_forbidden(alice, bob, alice_has_sales):
    body = {"userId": "alice", "description": "mine", "columns": []}
    assert bob.request("PUT", "/datasets/sales/sales.csv/metadata", json=body).status_code == 403
    form = {"userId": "alice", "domain": "sales", "file": (io.BytesIO(b"x\n1\n"), "sales.csv")}
    assert bob.request("POST", "/datasets/upload", data=form, content_type="multipart/form-data").status_code == 403
    alice_still_has_everything(alice)
