"""The breakers of one instance, one per dependency name, made on first use with the instance's settings."""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any

import pybreaker

from common.breakers import names, storage
from common.breakers.guard import Guard

if TYPE_CHECKING:
    from common.config import Settings


# Breakers one instance keeps. Model deployments are named by the caller's endpoint, so a tenant sending a new
# api_base with every request would otherwise grow the registry without end.
MAX_BREAKERS = 4096


class BreakerRegistry:
    """Name -> ``Guard``; ``shared=False`` keeps a breaker in the instance even when the others are in Redis.

    At most ``max_breakers`` are kept: past that, the oldest closed one is dropped (a closed breaker forgets no
    more than a short run of failures), or the oldest of all when every one is open.
    """

    def __init__(self, *, failure_threshold: int, reset_seconds: float,
                 shared_storage: storage.StorageFactory = storage.in_process, max_breakers: int = MAX_BREAKERS):
        if failure_threshold < 1 or reset_seconds <= 0:
            raise ValueError("the failure threshold and the reset time must be positive")
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self._shared_storage = shared_storage
        self._max_breakers = max_breakers
        self._guards: dict[str, Guard] = {}  # in the order they were made
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> BreakerRegistry:
        """Breakers as BREAKER_FAILURE_THRESHOLD and BREAKER_RESET_SECONDS say, in Redis when the cache is."""
        shared = (storage.in_redis(settings.redis_url, settings.collection_prefix)
                  if settings.cache_backend == "redis" else storage.in_process)
        return cls(failure_threshold=settings.breaker_failure_threshold,
                   reset_seconds=settings.breaker_reset_seconds, shared_storage=shared)

    def guard(self, name: str, *, shared: bool = True) -> Guard:
        """The breaker of the dependency ``name``, made (closed) on first use."""
        guard = self._guards.get(name)
        if guard is not None:
            return guard
        with self._lock:
            if name not in self._guards:
                if len(self._guards) >= self._max_breakers:
                    self._drop_one()
                state = self._shared_storage(name) if shared else storage.in_process(name)
                breaker = pybreaker.CircuitBreaker(fail_max=self.failure_threshold, reset_timeout=self.reset_seconds,
                                                   state_storage=state, name=name)
                self._guards[name] = Guard(name, breaker, state)
            return self._guards[name]

    def _drop_one(self) -> None:
        oldest_closed = next((name for name, guard in self._guards.items() if guard.state == pybreaker.STATE_CLOSED),
                             None)
        del self._guards[oldest_closed if oldest_closed is not None else next(iter(self._guards))]

    def open_breakers(self, *, public: bool = False) -> list[dict[str, Any]]:
        """Each breaker of this instance that is open now: its dependency and the seconds until its probe.

        ``public``: named as anyone may see them (``names.public_name``: no tenant, endpoint or connection), those
        that then share a name given once, with the soonest probe.
        """
        with self._lock:
            guards = list(self._guards.values())
        found: dict[str, int] = {}
        for guard in guards:
            wait = guard.retry_after()
            if guard.state == pybreaker.STATE_OPEN:
                name = names.public_name(guard.name) if public else guard.name
                found[name] = min(found.get(name, wait or 0), wait or 0)
        return [{"dependency": name, "retry_after": found[name]} for name in sorted(found)]


# One registry per Settings object: the context and the Postgres engines (which get only the settings) share
# it, while a test's own settings get fresh breakers. Dropped with its settings.
_REGISTRIES: dict[int, BreakerRegistry] = {}
_REGISTRIES_LOCK = threading.Lock()


def registry_for(settings: Settings) -> BreakerRegistry:
    """The breakers of the instance configured by ``settings``."""
    key = id(settings)
    registry = _REGISTRIES.get(key)
    if registry is not None:
        return registry
    with _REGISTRIES_LOCK:
        if key not in _REGISTRIES:
            _REGISTRIES[key] = BreakerRegistry.from_settings(settings)
            weakref.finalize(settings, _REGISTRIES.pop, key, None)
        return _REGISTRIES[key]
