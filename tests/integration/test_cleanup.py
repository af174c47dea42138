"""The cleanup sweep removes unreferenced old dataset versions, and nothing else."""

from __future__ import annotations

import datetime as dt

from common.services.cleanup import sweep_dataset_blobs


def test_sweep_removes_only_old_unreferenced_versions(alice, ctx):
    assert alice.upload("sales", ("a.csv", b"x\n1\n")).status_code == 201
    live = {info.key for info in ctx.blobs.list("")}
    orphan = "tenants/alice/datasets/sales/a.csv/0000000000001-deadbeef"
    ctx.blobs.put(f"{orphan}/original", b"left behind by a failed upload")
    ctx.blobs.put("tenants/alice/charts/keep.html", b"not a dataset blob")

    now = dt.datetime.now(dt.UTC)
    young = sweep_dataset_blobs(ctx.blobs, ctx.metadata, now)
    assert young["removed_versions"] == [] and young["kept_recent"] == 1  # could be an upload in progress

    later = now + dt.timedelta(hours=2)
    assert sweep_dataset_blobs(ctx.blobs, ctx.metadata, later, dry_run=True)["removed_versions"] == [orphan]
    assert sweep_dataset_blobs(ctx.blobs, ctx.metadata, later)["removed_versions"] == [orphan]
    remaining = {info.key for info in ctx.blobs.list("")}
    assert remaining == live | {"tenants/alice/charts/keep.html"}
    assert alice.get("/api/v1/datasets/sales/a.csv?format=original").get_data() == b"x\n1\n"


def test_cleanup_function_answers_the_scheduler(function_apps, ctx):
    client = function_apps["cleanup"].test_client()
    response = client.post("/cleanup?dry_run=true")
    assert response.status_code == 200
    assert response.get_json()["datasets"]["dry_run"] is True
