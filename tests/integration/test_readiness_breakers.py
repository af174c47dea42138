"""Readiness and the backends' circuit breakers: an open breaker fails its check at once and is listed, and the
check after the reset time is the probe that closes it."""

from __future__ import annotations

import time

from common import bootstrap

THRESHOLD, RESET = 2, 1.0


def test_an_open_storage_breaker_fails_readiness_until_a_probe_finds_the_storage_back(client, ctx, tmp_path):
    blocked = tmp_path / "storage-parent"
    blocked.write_text("a file where the storage root's parent should be")
    settings = ctx.settings.replace(data_dir=str(blocked), storage_backend="local", readiness_checks=("storage",),
                                    breaker_failure_threshold=THRESHOLD, breaker_reset_seconds=RESET)
    bootstrap.use(bootstrap.build(settings, metadata=ctx.metadata))
    for _ in range(THRESHOLD):
        body = client.get("/api/v1/health/ready").get_json()
        assert body["failed"] == ["storage:local"]
        assert "breaker" not in body["checks"]["storage:local"]["error"]

    response = client.get("/api/v1/health/ready")
    assert response.status_code == 503
    body = response.get_json()
    assert body["failed"] == ["storage:local"] and "circuit breaker is open" in body["checks"]["storage:local"]["error"]
    assert [entry["dependency"] for entry in body["open_breakers"]] == ["blobs"]

    blocked.unlink()
    blocked.mkdir()
    assert client.get("/api/v1/health/ready").status_code == 503  # open until the reset time has passed
    time.sleep(RESET + 0.1)
    response = client.get("/api/v1/health/ready")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["open_breakers"] == []
