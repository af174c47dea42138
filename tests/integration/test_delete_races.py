"""Deletes racing uploads end in one of two consistent states: the upload's dataset is whole and readable, or it
is not listed at all; never listed with its files gone. Each race is held open deterministically: the upload's
commit (its metadata write) waits inside the window while the delete runs."""

from __future__ import annotations

import threading

import pytest

from tests.doubles import MetadataHoldingOnePut
from tests.integration.conftest import Api

CSV = b"region,revenue\nNorth,120\nSouth,80\n"
NEW_CSV = b"region,revenue\nEast,5\nWest,7\nNorth,9\n"


@pytest.fixture
def alice(client) -> Api:
    return Api(client, "alice")


def _upload_held_while(alice: Api, ctx, name: str, content: bytes, delete_path: str) -> tuple[int, int]:
    """Upload ``name`` with its commit held until ``delete_path`` has been deleted; return both statuses."""
    held = MetadataHoldingOnePut(ctx.metadata, "datasets")
    ctx.override("metadata", held)
    answered = {}
    uploader = threading.Thread(target=lambda: answered.setdefault(
        "upload", alice.upload("races", (name, content)).status_code))
    uploader.start()
    assert held.holding.wait(30), "the upload never reached its commit"
    deleted = alice.delete(delete_path).status_code
    held.release.set()
    uploader.join(30)
    return answered["upload"], deleted


def _consistent(alice: Api, name: str, rows: int) -> bool:
    """The dataset is listed and reads whole, or it is not listed and reads as not found."""
    listed = [item["name"] for item in alice.get("/api/v1/datasets?domain=races").get_json()["items"]]
    preview = alice.get(f"/api/v1/datasets/races/{name}?n=10")
    if name in listed:
        return preview.status_code == 200 and len(preview.get_json()["rows"]) == rows
    return preview.status_code == 404


def test_a_new_dataset_committed_while_its_domain_is_deleted_is_whole(alice, ctx):
    assert alice.upload("races", ("old.csv", CSV)).status_code == 201
    uploaded, deleted = _upload_held_while(alice, ctx, "new.csv", NEW_CSV, "/api/v1/datasets/races")
    assert (uploaded, deleted) == (201, 200)
    assert _consistent(alice, "new.csv", 3) and _consistent(alice, "old.csv", 2)
    assert alice.get("/api/v1/datasets/races/new.csv?n=10").status_code == 200  # the upload won: it is there
    sql = alice.request("POST", "/api/v1/domains/races/sql", json={"sql": "SELECT SUM(revenue) AS r FROM new"})
    assert sql.status_code == 200 and sql.get_json()["rows"] == [{"r": 21}]


def test_a_dataset_overwritten_while_it_is_deleted_is_whole_or_gone(alice, ctx):
    assert alice.upload("races", ("sales.csv", CSV)).status_code == 201
    uploaded, deleted = _upload_held_while(alice, ctx, "sales.csv", NEW_CSV, "/api/v1/datasets/races/sales.csv")
    assert (uploaded, deleted) == (201, 200)
    assert _consistent(alice, "sales.csv", 3)
