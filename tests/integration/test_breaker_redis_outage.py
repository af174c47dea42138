"""Breakers whose state is in Redis, when Redis stops answering: one short timeout, then the instance counts on
its own for a while (no Redis round trip per guarded call, no traceback per call), and still opens."""

from __future__ import annotations

import logging
import socket
import time
import uuid

import pytest
import redis

from common.breakers import BreakerRegistry, storage
from common.errors import DependencyUnavailable
from tests.conftest import require_service


@pytest.fixture
def hung_address():
    """A port that accepts connections and never answers: what a hung Redis looks like to a client."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener.getsockname()[1]


def test_a_hung_redis_costs_one_timeout_then_the_instance_counts_alone(hung_address, caplog):
    shared = storage.in_redis(require_service("TEST_REDIS_URL", "Redis"), f"t{uuid.uuid4().hex[:8]}_",
                              retry_seconds=30)
    registry = BreakerRegistry(failure_threshold=3, reset_seconds=60, shared_storage=shared)
    guard = registry.guard("metadata")
    guard.failed()  # counted in Redis while it answers
    shared.redis.connection_pool = redis.ConnectionPool.from_url(
        f"redis://127.0.0.1:{hung_address}/0", socket_timeout=storage.REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=storage.REDIS_TIMEOUT_SECONDS)

    caplog.set_level(logging.WARNING)
    started = time.monotonic()
    for _ in range(3):
        guard.check()
        guard.failed()
    with pytest.raises(DependencyUnavailable):
        guard.check()  # opened on this instance's own count
    for _ in range(50):
        with pytest.raises(DependencyUnavailable):
            guard.check()
    elapsed = time.monotonic() - started

    assert elapsed < 1.5, f"{elapsed:.2f} s: Redis was asked again after it hung"
    assert not [record for record in caplog.records if record.name == "pybreaker"]
    about_redis = [record.getMessage() for record in caplog.records if "Redis" in record.getMessage()]
    assert len(about_redis) == 1 and "Redis unreachable" in about_redis[0], about_redis
