"""Where a breaker's state lives: in the instance, or in Redis for every instance (CACHE_BACKEND=redis).

Every guarded call reads and writes its breaker's state, so the shared state must not make a Redis outage
everyone's: each Redis command waits at most REDIS_TIMEOUT_SECONDS, and after one fails the instance stops
asking Redis for REDIS_RETRY_SECONDS (``_LatchedRedis``), keeping each breaker's state in the instance meanwhile
(``_Failover``). pybreaker logs a traceback for every Redis error it absorbs; one warning per outage is logged
here instead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pybreaker

log = logging.getLogger("convoinsight.breakers")

StorageFactory = Callable[[str], pybreaker.CircuitBreakerStorage]

REDIS_TIMEOUT_SECONDS = 0.25
REDIS_RETRY_SECONDS = 10.0


def in_process(name: str) -> pybreaker.CircuitBreakerStorage:
    """State kept by this instance alone."""
    return pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)


def in_redis(url: str, prefix: str, *, retry_seconds: float = REDIS_RETRY_SECONDS) -> StorageFactory:
    """A factory of states kept in the Redis at ``url``, under ``<prefix>breakers:<name>:`` keys, each kept in
    the instance while Redis is unreachable."""
    import redis

    client = _latched_client_class()(url, retry_seconds)
    logging.getLogger("pybreaker").addFilter(_drop_absorbed_redis_errors)

    def make(name: str) -> pybreaker.CircuitBreakerStorage:
        local = in_process(name)
        try:
            shared = pybreaker.CircuitRedisStorage(pybreaker.STATE_CLOSED, client, namespace=f"{prefix}breakers:{name}")
        except redis.RedisError as exc:
            # pybreaker writes the initial state when the storage is made; Redis being down then would fail
            # the request that first needs this dependency. This instance counts on its own instead.
            log.warning("circuit breaker %s: Redis unavailable (%s); its state is kept per instance",
                        name, type(exc).__name__)
            return local
        return _Failover(shared, local, client)

    make.redis = client  # type: ignore[attr-defined]  # the client its states share (tests simulate outages on it)
    return make


def _drop_absorbed_redis_errors(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("RedisError")


class _Failover(pybreaker.CircuitBreakerStorage):
    """A breaker's state in Redis, or in the instance while Redis is not being asked."""

    def __init__(self, shared: pybreaker.CircuitBreakerStorage, local: pybreaker.CircuitBreakerStorage,
                 client: Any):
        super().__init__("redis")
        self._shared, self._local, self._client = shared, local, client

    @property
    def _now(self) -> pybreaker.CircuitBreakerStorage:
        return self._local if self._client.resting() else self._shared

    @property
    def state(self) -> str:
        return self._now.state

    @state.setter
    def state(self, state: str) -> None:
        self._now.state = state

    def increment_counter(self) -> None:
        self._now.increment_counter()

    def reset_counter(self) -> None:
        self._now.reset_counter()

    def increment_success_counter(self) -> None:
        self._now.increment_success_counter()

    def reset_success_counter(self) -> None:
        self._now.reset_success_counter()

    @property
    def counter(self) -> int:
        return self._now.counter

    @property
    def success_counter(self) -> int:
        return self._now.success_counter

    @property
    def opened_at(self) -> Any:
        return self._now.opened_at

    @opened_at.setter
    def opened_at(self, value: Any) -> None:
        self._now.opened_at = value


_CLIENT_CLASS: type | None = None


def _latched_client_class() -> type:
    """A Redis client that, once a command failed to reach Redis, fails the next ones at once for a while."""
    global _CLIENT_CLASS
    if _CLIENT_CLASS is not None:
        return _CLIENT_CLASS
    import redis

    class _LatchedRedis(redis.Redis):
        def __init__(self, url: str, retry_seconds: float):
            pool = redis.ConnectionPool.from_url(url, socket_timeout=REDIS_TIMEOUT_SECONDS,
                                                 socket_connect_timeout=REDIS_TIMEOUT_SECONDS)
            super().__init__(connection_pool=pool)
            self._retry_seconds = retry_seconds
            self._resting_until = 0.0
            self._latch = threading.Lock()

        def resting(self) -> bool:
            """Whether Redis failed recently and is not being asked."""
            return time.monotonic() < self._resting_until

        def execute_command(self, *args: Any, **options: Any) -> Any:
            if self.resting():
                raise redis.ConnectionError("Redis failed recently; not asked again yet")
            try:
                return super().execute_command(*args, **options)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                with self._latch:
                    if not self.resting():
                        log.warning("circuit breakers: Redis unreachable (%s); state kept per instance for %g s",
                                    type(exc).__name__, self._retry_seconds)
                    self._resting_until = time.monotonic() + self._retry_seconds
                raise

    _CLIENT_CLASS = _LatchedRedis
    return _CLIENT_CLASS
