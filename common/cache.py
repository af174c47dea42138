"""The cache port: short-lived bytes (or lists of bytes) under string keys, shared by the answer cache, per-tenant
hot data and the pieces of an answer streamed from one instance to another.

Keys are opaque strings; the cache never parses them, so callers put the tenant in the key
(``tenants/<namespace>/answers/<hash>``). Every entry has a TTL of a whole number of seconds, at least one
(``ValueError`` otherwise). A cache is never the only copy: a live entry may be evicted early when the cache
is full (``MemoryCache``'s ``max_entries``, Redis's ``maxmemory`` policy).

Invariants every adapter keeps (``tests/contract/test_cache.py`` checks them on every backend):
- an expired entry is never returned, by ``get`` or as the base of ``incr``; ``add`` treats it as absent.
- ``add`` stores only when the key is absent and says whether this call stored it; it is atomic across
  threads (``MemoryCache``) and across threads and processes (``RedisCache``), so exactly one caller wins.
- ``incr`` is atomic; a new counter starts at 1 and gets its TTL when created, and later increments keep
  that expiry (a fixed window). ``get`` reads a counter as ASCII decimal bytes; ``incr`` of a value that is
  not one raises ``AppError`` and leaves it unchanged. ``set`` replaces both the value and the expiry.
- a key holds either bytes (``set``/``add``/``incr``) or a list of bytes (``append``). ``append`` adds one item
  at the end, creating the list when the key is absent, sets the list's expiry to its TTL from now (every
  append renews it) and returns the list's length after it; appends are atomic across threads
  (``MemoryCache``) and across threads and processes (``RedisCache``), so concurrent appends are all kept, in
  the order they happened, and each caller gets its own length. ``items(key, start)`` returns the items from
  index ``start`` (0 or more, ``ValueError`` otherwise) to the end, in order ([] for an absent or expired
  key, or past the end). ``get``, ``incr`` or ``items`` of a key of the other kind, and ``append`` to one,
  raise ``AppError`` and leave it unchanged (its expiry too); ``set`` replaces either kind and ``add`` counts
  either as present. ``max_entries`` counts a list as one entry, whatever its length: callers bound their lists.
- ``delete`` removes either kind; of an absent key it is not an error.
- an unreachable backend raises ``common.errors.ServiceUnavailable``, never a vendor exception.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import threading
from collections.abc import Iterator
from typing import Protocol

from common.clock import Clock, SystemClock
from common.errors import AppError, ServiceUnavailable


class Cache(Protocol):
    """Short-lived bytes under opaque keys; see the module docstring for invariants."""

    def get(self, key: str) -> bytes | None:
        """Return the value, or None when the key is absent or expired."""

    def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        """Store ``value`` for ``ttl_seconds``, replacing any previous value and expiry."""

    def add(self, key: str, value: bytes, ttl_seconds: int) -> bool:
        """Store ``value`` only if the key is absent; return True when this call stored it."""

    def delete(self, key: str) -> None:
        """Remove the key if present."""

    def incr(self, key: str, ttl_seconds: int) -> int:
        """Add one to the counter at ``key`` and return the new count; a new counter expires after the TTL."""

    def append(self, key: str, item: bytes, ttl_seconds: int) -> int:
        """Add ``item`` at the end of the list at ``key``, expiring ``ttl_seconds`` from now; return its length."""

    def items(self, key: str, start: int = 0) -> list[bytes]:
        """Return the items of the list at ``key`` from index ``start`` on ([] when it is absent or expired)."""

    def ping(self) -> None:
        """Raise ``ServiceUnavailable`` when the backend cannot be reached."""


_FAR_FUTURE = dt.datetime.max.replace(tzinfo=dt.UTC)


def _check_ttl(ttl_seconds: int) -> int:
    if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int) or ttl_seconds < 1:
        raise ValueError(f"ttl_seconds must be a positive int, got {ttl_seconds!r}")
    return ttl_seconds


def _check_start(start: int) -> int:
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise ValueError(f"start must be a non-negative int, got {start!r}")
    return start


class MemoryCache:
    """A per-process cache: a bounded dict whose entries expire by the injected clock."""

    def __init__(self, *, clock: Clock | None = None, max_entries: int = 10_000):
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._clock = clock or SystemClock()
        self._max_entries = max_entries
        self._entries: collections.OrderedDict[str, tuple[bytes | list[bytes], dt.datetime]] = (
            collections.OrderedDict())
        self._no_expiry_before = _FAR_FUTURE  # a lower bound on every expiry: no scan for stale entries before it
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            entry = self._live_entry(key)
            return _bytes_of(entry[0]) if entry else None

    def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        expires = self._clock.now() + dt.timedelta(seconds=_check_ttl(ttl_seconds))
        with self._lock:
            self._store(key, bytes(value), expires)

    def add(self, key: str, value: bytes, ttl_seconds: int) -> bool:
        expires = self._clock.now() + dt.timedelta(seconds=_check_ttl(ttl_seconds))
        with self._lock:
            if self._live_entry(key):
                return False
            self._store(key, bytes(value), expires)
            return True

    def delete(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def incr(self, key: str, ttl_seconds: int) -> int:
        expires = self._clock.now() + dt.timedelta(seconds=_check_ttl(ttl_seconds))
        with self._lock:
            entry = self._live_entry(key)
            if entry is None:
                count = 1
            elif _bytes_of(entry[0]).isdigit():
                count, expires = int(entry[0]) + 1, entry[1]
            else:
                raise AppError("cache value is not a counter")
            self._store(key, str(count).encode(), expires)
            return count

    def append(self, key: str, item: bytes, ttl_seconds: int) -> int:
        expires = self._clock.now() + dt.timedelta(seconds=_check_ttl(ttl_seconds))
        with self._lock:
            entry = self._live_entry(key)
            items = [] if entry is None else _list_of(entry[0])
            items.append(bytes(item))
            self._store(key, items, expires)
            return len(items)

    def items(self, key: str, start: int = 0) -> list[bytes]:
        _check_start(start)
        with self._lock:
            entry = self._live_entry(key)
            return _list_of(entry[0])[start:] if entry else []

    def ping(self) -> None:
        """Return: the cache lives in this process, so it is always reachable."""

    def _live_entry(self, key: str) -> tuple[bytes | list[bytes], dt.datetime] | None:
        entry = self._entries.get(key)
        if entry is not None and entry[1] <= self._clock.now():
            del self._entries[key]
            return None
        return entry

    def _store(self, key: str, value: bytes | list[bytes], expires: dt.datetime) -> None:
        self._entries.pop(key, None)  # re-inserted at the end, so the order is oldest write first
        now = self._clock.now()
        if len(self._entries) >= self._max_entries and self._no_expiry_before <= now:
            for stale in [k for k, (_, at) in self._entries.items() if at <= now]:
                del self._entries[stale]
            self._no_expiry_before = min((at for _, at in self._entries.values()), default=_FAR_FUTURE)
        while len(self._entries) >= self._max_entries:
            self._entries.popitem(last=False)
        self._entries[key] = (value, expires)
        self._no_expiry_before = min(self._no_expiry_before, expires)


def _bytes_of(value: bytes | list[bytes]) -> bytes:
    if isinstance(value, list):
        raise AppError("cache value is a list, not bytes")
    return value


def _list_of(value: bytes | list[bytes]) -> list[bytes]:
    if not isinstance(value, list):
        raise AppError("cache value is bytes, not a list")
    return value


# Atomic in Redis: the TTL is set in the same step that creates the counter.
_INCR_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if redis.call('TTL', KEYS[1]) == -1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""
# Atomic too, and a list only: RPUSH to a key of another type fails the script before EXPIRE touches the key.
_APPEND_SCRIPT = """
local length = redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return length
"""


class RedisCache:
    """A cache shared by every instance, in Redis (Memorystore); all keys get ``prefix`` in front."""

    def __init__(self, url: str, *, prefix: str = "", timeout_seconds: float = 2.0):
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self._prefix = prefix
        errors = redis.exceptions  # BusyLoadingError and AuthenticationError are ConnectionErrors
        self._unavailable = (errors.ConnectionError, errors.TimeoutError, errors.ReadOnlyError)
        self._redis_error = errors.RedisError
        # A hung server costs two timeouts: one retry rides out a connection dropped mid-command (failover);
        # more, with redis-py's default backoff, would only delay the 503.
        self._client = redis.Redis.from_url(
            url, socket_timeout=timeout_seconds, retry=Retry(NoBackoff(), 1), socket_connect_timeout=timeout_seconds
        )
        self._incr = self._client.register_script(_INCR_SCRIPT)
        self._append = self._client.register_script(_APPEND_SCRIPT)

    def get(self, key: str) -> bytes | None:
        with self._translated():
            return self._client.get(self._prefix + key)

    def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        with self._translated():
            self._client.set(self._prefix + key, value, ex=_check_ttl(ttl_seconds))

    def add(self, key: str, value: bytes, ttl_seconds: int) -> bool:
        with self._translated():
            return bool(self._client.set(self._prefix + key, value, ex=_check_ttl(ttl_seconds), nx=True))

    def delete(self, key: str) -> None:
        with self._translated():
            self._client.delete(self._prefix + key)

    def incr(self, key: str, ttl_seconds: int) -> int:
        with self._translated():
            return int(self._incr(keys=[self._prefix + key], args=[_check_ttl(ttl_seconds)]))

    def append(self, key: str, item: bytes, ttl_seconds: int) -> int:
        with self._translated():
            return int(self._append(keys=[self._prefix + key], args=[item, _check_ttl(ttl_seconds)]))

    def items(self, key: str, start: int = 0) -> list[bytes]:
        with self._translated():
            return list(self._client.lrange(self._prefix + key, _check_start(start), -1))

    def ping(self) -> None:
        with self._translated():
            self._client.ping()

    @contextlib.contextmanager
    def _translated(self) -> Iterator[None]:
        # The URL may hold a password, so messages never include it.
        try:
            yield
        except self._unavailable as exc:
            raise ServiceUnavailable("cache unavailable") from exc
        except self._redis_error as exc:
            raise AppError(f"cache command failed: {type(exc).__name__}") from exc
