"""Health: liveness, readiness per backend (and which one failed), the original's /health and /."""

from __future__ import annotations

import datetime as dt

from common import bootstrap
from common.clock import FakeClock


def test_health_and_live(client):
    assert client.get("/api/v1/health").get_json()["status"] == "ok"
    assert client.get("/api/v1/health/live").get_json() == {"status": "alive"}


def test_ready_checks_each_backend(client, ctx):
    response = client.get("/api/v1/health/ready")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "ready" and body["failed"] == []
    assert set(body["checks"]) == set(ctx.backends())


def test_ready_names_the_failed_backend(client, ctx, tmp_path):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("x")
    broken = bootstrap.build(ctx.settings.replace(data_dir=str(blocked), storage_backend="local"),
                             metadata=ctx.metadata)
    bootstrap.use(broken)
    response = client.get("/api/v1/health/ready")
    assert response.status_code == 503
    body = response.get_json()
    assert body["failed"] == ["storage:local"]
    assert body["checks"]["storage:local"]["ok"] is False


def test_ready_probes_only_the_backends_readiness_checks_names(client, ctx, tmp_path):
    # In the cloud the health function's account may read the metadata store only: storage is not its to probe.
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("x")
    broken_storage = ctx.settings.replace(data_dir=str(blocked), storage_backend="local")
    bootstrap.use(bootstrap.build(broken_storage.replace(readiness_checks=("metadata",)), metadata=ctx.metadata))
    response = client.get("/api/v1/health/ready")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["checks"] == {f"metadata:{ctx.settings.metadata_backend}": {"ok": True}}
    bootstrap.use(bootstrap.build(broken_storage.replace(readiness_checks=("metadata", "storage")),
                                  metadata=ctx.metadata))
    assert client.get("/api/v1/health/ready").get_json()["failed"] == ["storage:local"]


def test_original_health_routes(client):
    body = client.get("/health").get_json()
    assert body["status"] == "healthy" and body["ts"]
    assert client.get("/").get_json() == {"ok": True, "service": "ConvoInsight BE", "health": "/health"}


def test_original_health_time_says_its_zone(client, ctx):
    # The original's ts was naive (LEGACY_API.md §1); ours is the same ISO 8601 string with its UTC offset.
    clock = FakeClock(dt.datetime(2025, 12, 17, 3, 24, 58, 123456, tzinfo=dt.UTC))
    bootstrap.use(bootstrap.build(ctx.settings, clock=clock, blobs=ctx.blobs, metadata=ctx.metadata))
    ts = client.get("/health").get_json()["ts"]
    assert ts == "2025-12-17T03:24:58.123456+00:00"
    assert dt.datetime.fromisoformat(ts).utcoffset() == dt.timedelta(0)
