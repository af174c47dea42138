"""A saved Postgres connection's circuit breaker against a cluster this test starts, stops and starts again.

The cluster is the test's own (tests/throwaway_postgres.py), never the shared test server. On the
gcs-postgres-redis backends the breaker's state lives in Redis (CACHE_BACKEND=redis), on the others in the
instance.
"""

from __future__ import annotations

import time

import pytest

from common import bootstrap
from common.breakers import registry_for
from common.crypto import generate_key
from common.services.postgres import engines
from tests.throwaway_postgres import ThrowawayCluster

THRESHOLD, RESET = 2, 1.5
TEST_PATH = "/api/v1/postgres/connections/main/test"


@pytest.fixture(scope="module")
def cluster():
    try:
        cluster = ThrowawayCluster()
    except (RuntimeError, OSError) as exc:
        pytest.skip(f"no throwaway Postgres cluster here: {exc}")
    yield cluster
    cluster.close()


@pytest.fixture
def breaker_ctx(ctx, cluster):
    """The integration context with a key to save connections, and a low threshold and short reset time."""
    settings = ctx.settings.replace(encryption_keys=generate_key(), breaker_failure_threshold=THRESHOLD,
                                    breaker_reset_seconds=RESET, pg_connect_timeout_seconds=2.0)
    context = bootstrap.build(settings, clock=ctx.clock, blobs=ctx.blobs, metadata=ctx.metadata)
    bootstrap.use(context)
    yield context
    engines.ENGINES.clear()
    if not cluster_running(cluster):
        cluster.start()  # a failed test leaves the cluster as the next one expects it


def cluster_running(cluster) -> bool:
    from tests.services import listening

    return listening(cluster.port)


@pytest.fixture
def socket_opens(monkeypatch):
    """Count the sockets opened to Postgres servers (each new connection opens one)."""
    opened = []
    real = engines.open_socket

    def counting(*args, **kwargs):
        opened.append(args[:2])
        return real(*args, **kwargs)

    monkeypatch.setattr(engines, "open_socket", counting)
    return opened


def save_connection(api, cluster) -> None:
    body = {"name": "main", "host": "127.0.0.1", "port": cluster.port, "dbname": "postgres", "user": cluster.user,
            "password": "unused", "sslmode": "disable", "schema": "public"}
    saved = api.request("POST", "/api/v1/postgres/connections", json=body)
    assert saved.status_code == 201, saved.get_json()


def test_a_stopped_server_opens_the_breaker_and_a_restarted_one_closes_it(alice, breaker_ctx, cluster,
                                                                           socket_opens):
    save_connection(alice, cluster)
    assert alice.request("POST", TEST_PATH).get_json()["ok"] is True
    bad_sql = alice.request("POST", "/api/v1/postgres/main/query", json={"sql": "SELECT no_such FROM nowhere"})
    assert 400 <= bad_sql.status_code < 500  # a caller's mistake: the server answered

    cluster.stop()
    for _ in range(THRESHOLD):
        refused = alice.request("POST", TEST_PATH)
        assert refused.status_code == 502 and refused.get_json()["error"]["code"] == "PG_UNREACHABLE"

    opened_before = len(socket_opens)
    started = time.monotonic()
    failed_fast = alice.request("POST", TEST_PATH)
    elapsed = time.monotonic() - started
    error = failed_fast.get_json()["error"]
    assert failed_fast.status_code == 503 and error["code"] == "DEPENDENCY_UNAVAILABLE"
    assert error["details"]["dependency"] == "postgres:alice/main"
    assert 1 <= int(failed_fast.headers["Retry-After"]) <= RESET + 1
    assert len(socket_opens) == opened_before  # no connection was attempted
    assert elapsed < 0.5
    query = alice.request("POST", "/api/v1/postgres/main/query", json={"sql": "SELECT 1 AS one"})
    assert query.status_code == 503 and query.get_json()["error"]["code"] == "DEPENDENCY_UNAVAILABLE"

    ready = alice.get("/api/v1/health/ready").get_json()
    assert [entry["dependency"] for entry in ready["open_breakers"]] == ["postgres"]  # no user or connection name

    cluster.start()
    assert alice.request("POST", TEST_PATH).status_code == 503  # still open: the reset time has not passed
    time.sleep(RESET + 0.2)
    probe = alice.request("POST", TEST_PATH)
    assert probe.status_code == 200 and probe.get_json()["ok"] is True
    assert alice.get("/api/v1/health/ready").get_json()["open_breakers"] == []
    query = alice.request("POST", "/api/v1/postgres/main/query", json={"sql": "SELECT 1 AS one"})
    assert query.status_code == 200, query.get_json()


def test_another_instance_sees_the_breaker_open_when_the_state_is_in_redis(alice, breaker_ctx, cluster):
    save_connection(alice, cluster)
    cluster.stop()
    for _ in range(THRESHOLD):
        assert alice.request("POST", TEST_PATH).status_code == 502
    # Another instance: the same configuration, its own settings object, so its own registry of breakers.
    other = registry_for(breaker_ctx.settings.replace()).guard("postgres:alice/main")
    shared = breaker_ctx.settings.cache_backend == "redis"
    assert other.state == ("open" if shared else "closed")
    # The cache's own breaker is never shared, even with the rest in Redis.
    cache = breaker_ctx.breakers.guard("cache", shared=False)
    for _ in range(THRESHOLD):
        cache.failed()
    assert cache.state == "open"
    assert registry_for(breaker_ctx.settings.replace()).guard("cache", shared=False).state == "closed"
