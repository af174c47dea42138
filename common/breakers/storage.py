"""Where a breaker's state lives: in the instance, or in Redis for every instance (CACHE_BACKEND=redis)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pybreaker

log = logging.getLogger("convoinsight.breakers")

StorageFactory = Callable[[str], pybreaker.CircuitBreakerStorage]

# Every breaker reads its state from Redis on each call: a hung Redis must cost little, and then pybreaker
# answers "closed" (its fallback), so a Redis outage never opens or holds open another dependency's breaker.
REDIS_TIMEOUT_SECONDS = 0.25


def in_process(name: str) -> pybreaker.CircuitBreakerStorage:
    """State kept by this instance alone."""
    return pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)


def in_redis(url: str, prefix: str) -> StorageFactory:
    """A factory of states kept in the Redis at ``url``, under ``<prefix>breakers:<name>:`` keys."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=REDIS_TIMEOUT_SECONDS,
                                  socket_connect_timeout=REDIS_TIMEOUT_SECONDS)

    def make(name: str) -> pybreaker.CircuitBreakerStorage:
        try:
            return pybreaker.CircuitRedisStorage(pybreaker.STATE_CLOSED, client, namespace=f"{prefix}breakers:{name}")
        except redis.RedisError as exc:
            # pybreaker writes the initial state when the storage is made; Redis being down then would fail
            # the request that first needs this dependency. This instance counts on its own instead.
            log.warning("circuit breaker %s: Redis unavailable (%s); its state is kept per instance",
                        name, type(exc).__name__)
            return in_process(name)

    return make
