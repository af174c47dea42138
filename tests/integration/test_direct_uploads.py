"""Direct uploads: reserve, send the file to storage (GCS through a V4 signed URL, or the local signed path),
commit; on every backend, with what can go wrong on the way."""

from __future__ import annotations

import dataclasses
import datetime as dt
import urllib.request

import pytest

from common import bootstrap
from common.clock import FakeClock
from common.services.cleanup import sweep_dataset_blobs
from common.signing import generate_secret
from tests.integration.conftest import assert_error

SALES = b"region,revenue\nNorth,120\nSouth,80\nNorth,130\n"


@pytest.fixture
def signed(ctx):
    """The test's context with the URL_SIGNING_SECRET the emulator (or the cloud's secret) provides."""
    context = bootstrap.build(ctx.settings.replace(url_signing_secret=generate_secret(),
                                                   direct_upload_max_bytes=4096),
                              clock=ctx.clock, blobs=ctx.blobs, metadata=ctx.metadata)
    bootstrap.use(context)
    return context


def _start(api, *, domain="Sales", filename="big.csv", size=len(SALES)):
    return api.request("POST", "/api/v1/uploads", json={"domain": domain, "filename": filename, "size_bytes": size})


def _send(api, upload: dict, content: bytes) -> int:
    """PUT the file where the reservation says, as a browser would: no credentials of ours."""
    if upload["url"].startswith("http"):  # GCS (here its emulator, on loopback)
        request = urllib.request.Request(upload["url"], data=content, method="PUT", headers=upload["headers"])
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    return api.client.open(upload["url"], method="PUT", data=content, headers=upload["headers"]).status_code


def _staged(ctx, upload_id: str) -> list[str]:
    return [info.key for info in ctx.blobs.list(f"tenants/alice/uploads/{upload_id}/")]


def test_a_file_sent_directly_is_committed_as_a_dataset(alice, signed):
    started = _start(alice)
    assert started.status_code == 201, started.get_json()
    reserved = started.get_json()
    assert reserved["status"] == "pending" and reserved["domain"] == "sales" and reserved["name"] == "big.csv"
    assert reserved["upload"]["method"] == "PUT"
    assert _send(alice, reserved["upload"], SALES) == 200
    assert _staged(signed, reserved["upload_id"])

    committed = alice.request("POST", reserved["commit_url"])
    assert committed.status_code == 201, committed.get_json()
    [dataset] = committed.get_json()["items"]
    assert dataset["name"] == "big.csv" and dataset["domain"] == "sales"
    assert dataset["table_names"] == ["big"] and dataset["tables"][0]["table_name"] == "big"
    preview = alice.get("/api/v1/datasets/sales/big.csv?n=5").get_json()
    assert [row["revenue"] for row in preview["rows"]] == [120, 80, 130]
    assert alice.get("/api/v1/datasets/sales/big.csv?format=original").get_data() == SALES
    assert _staged(signed, reserved["upload_id"]) == []

    again = alice.request("POST", reserved["commit_url"])  # a retried commit: the same answer, no new version
    assert again.status_code == 200 and again.get_json()["items"] == [dataset]
    assert alice.get(f"/api/v1/uploads/{reserved['upload_id']}").get_json()["status"] == "committed"


def test_gcs_gets_a_v4_url_whose_signed_headers_bound_the_size(alice, signed):
    if signed.settings.storage_backend != "gcs":
        pytest.skip("only GCS signs its own upload URLs")
    upload = _start(alice).get_json()["upload"]
    assert "X-Goog-Signature=" in upload["url"] and "x-goog-content-length-range" in upload["url"]
    assert upload["headers"] == {"Content-Type": "application/octet-stream",
                                 "x-goog-content-length-range": f"0,{len(SALES)}"}


def test_commit_before_the_file_arrives_is_409_and_can_be_done_later(alice, signed):
    reserved = _start(alice).get_json()
    assert_error(alice.request("POST", reserved["commit_url"]), 409, "UPLOAD_INCOMPLETE")
    assert alice.get(f"/api/v1/uploads/{reserved['upload_id']}").get_json()["status"] == "pending"
    _send(alice, reserved["upload"], SALES)
    assert alice.request("POST", reserved["commit_url"]).status_code == 201


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"filename": "big.csv", "size_bytes": 10}, 400, "INVALID_NAME"),
    ({"domain": "sales", "filename": "../big.csv", "size_bytes": 10}, 400, "INVALID_NAME"),
    ({"domain": "sales", "filename": "big.exe", "size_bytes": 10}, 400, "UNSUPPORTED_FORMAT"),
    ({"domain": "sales", "filename": "big.csv", "size_bytes": 0}, 400, "INVALID_FIELD"),
    ({"domain": "sales", "filename": "big.csv", "size_bytes": "10"}, 400, "INVALID_FIELD"),
    ({"domain": "sales", "filename": "big.csv", "size_bytes": True}, 400, "INVALID_FIELD"),
    ({"domain": "sales", "filename": "big.csv", "size_bytes": 4097}, 413, "PAYLOAD_TOO_LARGE"),
])
def test_bad_reservations_are_4xx_and_reserve_nothing(alice, signed, body, status, code):
    assert_error(alice.request("POST", "/api/v1/uploads", json=body), status, code)
    assert list(signed.metadata.list("uploads", "alice")) == []


def test_a_refused_file_fails_the_upload_for_good(alice, signed):
    content = b"\x00\x01binary, not a table\xff\xfe" * 4
    reserved = _start(alice, size=len(content)).get_json()
    _send(alice, reserved["upload"], content)
    refused = alice.request("POST", reserved["commit_url"])
    assert 400 <= refused.status_code < 500
    state = alice.get(f"/api/v1/uploads/{reserved['upload_id']}").get_json()
    assert state["status"] == "failed" and state["error"]["message"]
    assert_error(alice.request("POST", reserved["commit_url"]), 409, "UPLOAD_FAILED")
    assert _staged(signed, reserved["upload_id"]) == []
    assert alice.get("/api/v1/datasets?domain=sales").get_json()["items"] == []


def test_more_bytes_than_announced_are_refused(alice, signed):
    reserved = _start(alice, size=10).get_json()
    record = signed.metadata.get("uploads", "alice", reserved["upload_id"])
    signed.blobs.put(record.data["staging_key"], SALES)  # what GCS's signed range would have refused
    error = assert_error(alice.request("POST", reserved["commit_url"]), 413, "UPLOAD_SIZE_MISMATCH")
    assert error["details"] == {"reserved_bytes": 10, "received_bytes": len(SALES)}
    assert f"{len(SALES)} bytes" in error["message"] and "reserved 10" in error["message"]
    assert alice.get("/api/v1/datasets?domain=sales").get_json()["items"] == []


def test_fewer_bytes_than_reserved_are_refused_at_commit_and_a_whole_put_makes_it_committable(alice, signed):
    # Issue 10: a reservation of 81,000,000 bytes committed a 3.4 MB file without a word.
    reserved = _start(alice).get_json()
    short = SALES[:-8]
    if signed.settings.storage_backend == "gcs":
        assert _send(alice, reserved["upload"], short) == 200  # GCS's signed range bounds the size from above only
    else:
        record = signed.metadata.get("uploads", "alice", reserved["upload_id"])
        signed.blobs.put(record.data["staging_key"], short)  # as if stored by a PUT that was cut short
    error = assert_error(alice.request("POST", reserved["commit_url"]), 409, "UPLOAD_SIZE_MISMATCH")
    assert error["details"] == {"reserved_bytes": len(SALES), "received_bytes": len(short)}
    assert f"is {len(short)} bytes but the upload reserved {len(SALES)}" in error["message"]
    assert alice.get(f"/api/v1/uploads/{reserved['upload_id']}").get_json()["status"] == "pending"
    assert alice.get("/api/v1/datasets?domain=sales").get_json()["items"] == []
    assert _send(alice, reserved["upload"], SALES) == 200
    assert alice.request("POST", reserved["commit_url"]).status_code == 201
    assert alice.get("/api/v1/datasets/sales/big.csv?format=original").get_data() == SALES


def test_a_file_replaced_while_the_commit_starts_is_refused_and_left_pending(alice, signed, monkeypatch):
    reserved = _start(alice).get_json()
    record = signed.metadata.get("uploads", "alice", reserved["upload_id"])
    signed.blobs.put(record.data["staging_key"], SALES[:5])
    real_stat = signed.blobs.stat
    # The size check saw the whole file; a second PUT then replaced it with a short one before the download.
    monkeypatch.setattr(signed.blobs, "stat", lambda key: dataclasses.replace(real_stat(key), size=len(SALES)))
    assert_error(alice.request("POST", reserved["commit_url"]), 409, "UPLOAD_SIZE_MISMATCH")
    assert alice.get(f"/api/v1/uploads/{reserved['upload_id']}").get_json()["status"] == "pending"
    assert alice.get("/api/v1/datasets?domain=sales").get_json()["items"] == []


def test_a_commit_in_progress_is_not_run_twice(alice, signed):
    reserved = _start(alice).get_json()
    _send(alice, reserved["upload"], SALES)
    record = signed.metadata.get("uploads", "alice", reserved["upload_id"])
    running = {**record.data, "status": "committing", "lease_until": "9999-01-01T00:00:00+00:00"}
    signed.metadata.put("uploads", "alice", reserved["upload_id"], running, expected_revision=record.revision)
    assert_error(alice.request("POST", reserved["commit_url"]), 409, "UPLOAD_IN_PROGRESS")
    assert_error(alice.delete(f"/api/v1/uploads/{reserved['upload_id']}"), 409, "UPLOAD_IN_PROGRESS")
    record = signed.metadata.get("uploads", "alice", reserved["upload_id"])
    expired = {**record.data, "lease_until": "2000-01-01T00:00:00+00:00"}  # its worker died
    signed.metadata.put("uploads", "alice", reserved["upload_id"], expired, expected_revision=record.revision)
    assert alice.request("POST", reserved["commit_url"]).status_code == 201


def test_an_upload_can_be_abandoned(alice, signed):
    reserved = _start(alice).get_json()
    _send(alice, reserved["upload"], SALES)
    assert alice.delete(f"/api/v1/uploads/{reserved['upload_id']}").get_json()["deleted"] is True
    assert_error(alice.get(f"/api/v1/uploads/{reserved['upload_id']}"), 404, "UPLOAD_NOT_FOUND")
    assert _staged(signed, reserved["upload_id"]) == []


def test_another_tenants_upload_is_not_found(alice, bob, signed):
    reserved = _start(alice).get_json()
    _send(alice, reserved["upload"], SALES)
    for method, path in (("GET", ""), ("POST", "/commit"), ("DELETE", "")):
        assert_error(bob.request(method, f"/api/v1/uploads/{reserved['upload_id']}{path}"), 404, "UPLOAD_NOT_FOUND")
    assert alice.request("POST", reserved["commit_url"]).status_code == 201
    assert bob.get("/api/v1/datasets").get_json()["items"] == []


def test_the_local_upload_path_is_signed_for_one_tenant_one_size_and_a_while(alice, signed, client):
    if signed.settings.storage_backend != "local":
        pytest.skip("GCS receives the bytes itself")
    reserved = _start(alice, size=10).get_json()
    url = reserved["upload"]["url"]
    assert client.put(url.replace("tenant=alice", "tenant=bob"), data=b"0123456789").status_code == 403
    assert client.put(url.split("&signature=")[0], data=b"0123456789").status_code == 403
    assert client.post(url, data=b"0123456789").status_code == 405
    assert_error(client.put(url, data=SALES), 413, "UPLOAD_SIZE_MISMATCH")
    assert_error(client.put(url, data=b""), 400, "EMPTY_FILE")
    assert client.put(url, data=b"0123456789").status_code == 200
    short = assert_error(client.put(url, data=b"01234"), 400, "UPLOAD_SIZE_MISMATCH")
    assert short["details"] == {"reserved_bytes": 10, "received_bytes": 5}
    record = signed.metadata.get("uploads", "alice", reserved["upload_id"])
    assert signed.blobs.get(record.data["staging_key"]) == b"0123456789"  # the refused PUT changed nothing
    later = FakeClock(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=signed.settings.upload_url_ttl_seconds + 1))
    bootstrap.use(bootstrap.build(signed.settings, clock=later, blobs=signed.blobs, metadata=signed.metadata))
    assert_error(client.put(url, data=b"0123456789"), 403, "URL_EXPIRED")


def test_abandoned_staged_files_are_swept_after_a_day(alice, signed):
    reserved = _start(alice).get_json()
    _send(alice, reserved["upload"], SALES)
    now = dt.datetime.now(dt.UTC)
    assert sweep_dataset_blobs(signed.blobs, signed.metadata, now)["removed_staged_uploads"] == []
    swept = sweep_dataset_blobs(signed.blobs, signed.metadata, now + dt.timedelta(days=1, minutes=1))
    assert swept["removed_staged_uploads"] == [f"tenants/alice/uploads/{reserved['upload_id']}"]
    assert _staged(signed, reserved["upload_id"]) == []
    assert_error(alice.request("POST", reserved["commit_url"]), 409, "UPLOAD_INCOMPLETE")


def test_direct_uploads_have_their_own_limit_not_the_multipart_one(alice, signed):
    """MAX_UPLOAD_BYTES bounds a file sent through a function; a direct upload is bounded by its own limit."""
    bootstrap.use(bootstrap.build(signed.settings.replace(max_upload_bytes=16), clock=signed.clock,
                                  blobs=signed.blobs, metadata=signed.metadata))
    reserved = _start(alice).get_json()  # larger than MAX_UPLOAD_BYTES, within DIRECT_UPLOAD_MAX_BYTES
    assert reserved["size_bytes"] == len(SALES) > 16
    _send(alice, reserved["upload"], SALES)
    assert alice.request("POST", reserved["commit_url"]).status_code == 201
    error = assert_error(_start(alice, size=4097), 413, "PAYLOAD_TOO_LARGE")
    assert error["details"] == {"limit_bytes": 4096} and "4,096 bytes" in error["message"]


def test_a_lowered_limit_stops_uploads_reserved_before_it_and_changes_nothing(alice, signed, client):
    reserved = _start(alice).get_json()
    url = reserved["upload"]["url"]
    lowered = bootstrap.build(signed.settings.replace(direct_upload_max_bytes=len(SALES) - 1), clock=signed.clock,
                              blobs=signed.blobs, metadata=signed.metadata)
    bootstrap.use(lowered)
    if signed.settings.storage_backend == "local":  # GCS receives the bytes itself, bounded by the signed range
        assert_error(client.put(url, data=SALES), 413, "PAYLOAD_TOO_LARGE")
        assert _staged(signed, reserved["upload_id"]) == []
    bootstrap.use(signed)
    _send(alice, reserved["upload"], SALES)
    bootstrap.use(lowered)
    assert_error(alice.request("POST", reserved["commit_url"]), 413, "PAYLOAD_TOO_LARGE")
    assert alice.get(f"/api/v1/uploads/{reserved['upload_id']}").get_json()["status"] == "pending"
    assert alice.get("/api/v1/datasets?domain=sales").get_json()["items"] == []
    bootstrap.use(signed)  # the limit raised again: the same upload commits
    assert alice.request("POST", reserved["commit_url"]).status_code == 201
