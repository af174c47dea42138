"""A failed upload leaves nothing behind; a reader during a re-upload sees one whole version."""

from __future__ import annotations

import threading

from tests.doubles import MetadataThatFailsOnPut

OLD = b"v\n" + b"1\n" * 200
NEW = b"v\n" + b"2\n" * 300




def test_failed_commit_leaves_no_dataset_and_no_blob(alice, ctx):
    real = ctx.metadata
    ctx.__dict__["metadata"] = MetadataThatFailsOnPut(real)
    response = alice.upload("sales", ("sales.csv", OLD))
    assert response.status_code == 503
    ctx.__dict__["metadata"] = real
    assert alice.get("/api/v1/datasets").get_json()["items"] == []
    assert list(ctx.blobs.list("")) == []


def test_failed_reupload_keeps_the_previous_version_whole(alice, ctx):
    assert alice.upload("sales", ("sales.csv", OLD)).status_code == 201
    keys_before = sorted(info.key for info in ctx.blobs.list(""))
    real = ctx.metadata
    ctx.__dict__["metadata"] = MetadataThatFailsOnPut(real)
    assert alice.upload("sales", ("sales.csv", NEW)).status_code == 503
    ctx.__dict__["metadata"] = real
    assert sorted(info.key for info in ctx.blobs.list("")) == keys_before
    assert alice.get("/api/v1/datasets/sales/sales.csv?format=original").get_data() == OLD


def test_concurrent_readers_see_old_or_new_never_a_mix(alice, ctx):
    assert alice.upload("sales", ("sales.csv", OLD)).status_code == 201
    seen, failures, stop = set(), [], threading.Event()

    def read_until_stopped():
        while not stop.is_set():
            response = alice.get("/api/v1/datasets/sales/sales.csv?n=1000")
            if response.status_code != 200:
                failures.append(response.status_code)
                continue
            body = response.get_json()
            values = {row["v"] for row in body["rows"]}
            # The metadata (row_count) and the rows must come from the same version.
            seen.add((body["row_count"], len(body["rows"]), frozenset(values)))

    readers = [threading.Thread(target=read_until_stopped) for _ in range(3)]
    for reader in readers:
        reader.start()
    try:
        for content in (NEW, OLD, NEW, OLD, NEW):
            assert alice.upload("sales", ("sales.csv", content)).status_code == 201
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    assert failures == []
    assert seen <= {(200, 200, frozenset({1})), (300, 300, frozenset({2}))}
