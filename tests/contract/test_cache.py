"""The Cache contract (see ``common/cache.py``), checked on every backend.

``redis`` runs against the server named by TEST_REDIS_URL, with a fresh key prefix per test that is removed
afterwards. Expiry advances a FakeClock for ``memory`` and waits out a real one-second TTL for ``redis``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from common.cache import Cache, MemoryCache, RedisCache
from common.clock import FakeClock
from common.errors import AppError, ServiceUnavailable
from tests.conftest import require_service

NON_UTF8 = bytes(range(256)) * 3 + b"\xff\xfe\x00\xc3\x28"
THREADS = 8
INCREMENTS_PER_THREAD = 50
PAST_ONE_SECOND = 1.2  # a margin over the 1 s TTL, since Redis expires by its own clock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", "redis"])
def cache(request, clock, unique_prefix):
    if request.param == "memory":
        yield MemoryCache(clock=clock)
        return
    url = require_service("TEST_REDIS_URL", "Redis")
    prefix = f"{unique_prefix}:"
    yield RedisCache(url, prefix=prefix)
    import redis

    client = redis.Redis.from_url(url)
    stale = list(client.scan_iter(match=f"{prefix}*"))
    if stale:
        client.delete(*stale)
    client.close()


@pytest.fixture
def let_time_pass(cache, clock) -> Callable[[float], None]:
    """Move the backend's time forward: the fake clock for memory, the wall clock for Redis."""
    return clock.advance if isinstance(cache, MemoryCache) else time.sleep


def _all_at_once(action: Callable[[int], object], threads: int = THREADS) -> list:
    """Run ``action(i)`` on ``threads`` threads released together, and return the results in order."""
    barrier = threading.Barrier(threads)

    def run(index: int):
        barrier.wait()
        return action(index)

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(run, range(threads)))


def test_set_then_get_returns_the_same_bytes(cache: Cache):
    cache.set("tenants/t1/answers/raw", NON_UTF8, 60)
    cache.set("tenants/t1/answers/empty", b"", 60)
    cache.set("tenants/t1/answers/big", NON_UTF8 * 1000, 60)
    cache.set("tenants/t1/ключ with spaces:and:colons", b"unicode key", 60)

    assert cache.get("tenants/t1/answers/raw") == NON_UTF8
    assert cache.get("tenants/t1/answers/empty") == b""
    assert cache.get("tenants/t1/answers/big") == NON_UTF8 * 1000
    assert cache.get("tenants/t1/ключ with spaces:and:colons") == b"unicode key"


def test_keys_are_distinct_per_tenant(cache: Cache):
    cache.set("tenants/t1/answers/q", b"for t1", 60)
    cache.set("tenants/t2/answers/q", b"for t2", 60)

    assert cache.get("tenants/t1/answers/q") == b"for t1"
    assert cache.get("tenants/t2/answers/q") == b"for t2"


def test_get_of_a_missing_key_returns_none(cache: Cache):
    assert cache.get("tenants/t1/never-written") is None


def test_set_overwrites_the_previous_value(cache: Cache):
    cache.set("k", b"first", 60)
    cache.set("k", b"second", 60)

    assert cache.get("k") == b"second"


def test_delete_removes_the_key_and_an_absent_key_is_fine(cache: Cache):
    cache.set("k", b"v", 60)
    cache.set("other", b"kept", 60)

    cache.delete("k")
    cache.delete("k")
    cache.delete("never-written")

    assert cache.get("k") is None
    assert cache.get("other") == b"kept"


def test_add_stores_only_when_the_key_is_absent(cache: Cache):
    assert cache.add("dedup", b"first", 60) is True
    assert cache.add("dedup", b"second", 60) is False
    assert cache.get("dedup") == b"first"

    cache.delete("dedup")
    assert cache.add("dedup", b"third", 60) is True
    assert cache.get("dedup") == b"third"


def test_add_does_not_replace_a_value_written_by_set(cache: Cache):
    cache.set("k", b"from set", 60)

    assert cache.add("k", b"from add", 60) is False
    assert cache.get("k") == b"from set"


@pytest.mark.parametrize("round_", range(5))
def test_add_from_many_threads_at_once_has_exactly_one_winner(cache: Cache, round_):
    key = f"dedup/{round_}"
    won = _all_at_once(lambda index: cache.add(key, f"thread {index}".encode(), 60))

    assert won.count(True) == 1
    assert cache.get(key) == f"thread {won.index(True)}".encode()


def test_incr_starts_at_one_and_counts_up(cache: Cache):
    assert [cache.incr("hits", 60) for _ in range(3)] == [1, 2, 3]
    assert cache.get("hits") == b"3"
    assert cache.incr("other-hits", 60) == 1


def test_incr_continues_a_count_written_by_set(cache: Cache):
    cache.set("hits", b"41", 60)

    assert cache.incr("hits", 60) == 42


def test_incr_from_many_threads_counts_every_increment(cache: Cache):
    def increment_many(_index: int) -> list[int]:
        return [cache.incr("hits", 60) for _ in range(INCREMENTS_PER_THREAD)]

    seen = [count for counts in _all_at_once(increment_many) for count in counts]

    total = THREADS * INCREMENTS_PER_THREAD
    assert sorted(seen) == list(range(1, total + 1))  # every caller got its own count
    assert cache.get("hits") == str(total).encode()


def test_incr_of_a_value_that_is_not_a_count_raises(cache: Cache):
    cache.set("k", b"not a number", 60)

    with pytest.raises(AppError):
        cache.incr("k", 60)
    assert cache.get("k") == b"not a number"


@pytest.mark.parametrize("ttl", [0, -1])
def test_a_ttl_below_one_second_is_refused(cache: Cache, ttl):
    with pytest.raises(ValueError):
        cache.set("k", b"v", ttl)
    with pytest.raises(ValueError):
        cache.add("k", b"v", ttl)
    with pytest.raises(ValueError):
        cache.incr("k", ttl)
    assert cache.get("k") is None


def test_expired_entries_are_never_returned(cache: Cache, let_time_pass):
    cache.set("set-short", b"v", 1)
    cache.add("add-short", b"v", 1)
    cache.incr("counter-short", 1)
    cache.set("set-long", b"kept", 60)
    cache.set("set-renewed", b"old", 1)
    cache.set("set-renewed", b"renewed", 60)  # set replaces the expiry too
    cache.incr("counter-window", 1)
    cache.incr("counter-window", 60)  # later increments keep the window the first one opened

    let_time_pass(PAST_ONE_SECOND)

    assert cache.get("set-short") is None
    assert cache.add("add-short", b"new", 60) is True
    assert cache.get("add-short") == b"new"
    assert cache.incr("counter-short", 60) == 1
    assert cache.get("set-long") == b"kept"
    assert cache.get("set-renewed") == b"renewed"
    assert cache.get("counter-window") is None


def test_ping_succeeds_when_the_backend_is_up(cache: Cache):
    cache.ping()


# Lists: the pieces of a streamed answer, appended by one instance and read by others.


def test_append_keeps_the_order_and_returns_the_length(cache: Cache):
    lengths = [cache.append("stream", item, 60) for item in [b"first", NON_UTF8, b"", b"last"]]

    assert lengths == [1, 2, 3, 4]
    assert cache.items("stream") == [b"first", NON_UTF8, b"", b"last"]
    assert cache.append("other-stream", b"alone", 60) == 1
    assert cache.items("other-stream") == [b"alone"]


def test_items_start_at_the_offset_given(cache: Cache):
    for item in [b"a", b"b", b"c", b"d"]:
        cache.append("stream", item, 60)

    assert cache.items("stream", 0) == [b"a", b"b", b"c", b"d"]
    assert cache.items("stream", 1) == [b"b", b"c", b"d"]
    assert cache.items("stream", 3) == [b"d"]
    assert cache.items("stream", 4) == []
    assert cache.items("stream", 100) == []
    with pytest.raises(ValueError):
        cache.items("stream", -1)


def test_items_of_an_absent_key_are_empty(cache: Cache):
    assert cache.items("never-written") == []
    assert cache.items("never-written", 5) == []


def test_delete_removes_a_list(cache: Cache):
    cache.append("stream", b"a", 60)
    cache.append("kept", b"b", 60)

    cache.delete("stream")

    assert cache.items("stream") == []
    assert cache.append("stream", b"again", 60) == 1
    assert cache.items("kept") == [b"b"]


def test_appends_from_many_threads_at_once_are_all_kept(cache: Cache):
    def append_many(index: int) -> list[int]:
        return [cache.append("stream", f"{index}:{n}".encode(), 60) for n in range(INCREMENTS_PER_THREAD)]

    lengths = [length for per_thread in _all_at_once(append_many) for length in per_thread]

    total = THREADS * INCREMENTS_PER_THREAD
    assert sorted(lengths) == list(range(1, total + 1))  # every caller got its own length
    items = [item.decode() for item in cache.items("stream")]
    assert sorted(items) == sorted(f"{index}:{n}" for index in range(THREADS) for n in range(INCREMENTS_PER_THREAD))
    for index in range(THREADS):  # each thread's items in the order it appended them
        assert [item for item in items if item.startswith(f"{index}:")] == [
            f"{index}:{n}" for n in range(INCREMENTS_PER_THREAD)]


def test_a_list_expires_and_every_append_renews_its_expiry(cache: Cache, let_time_pass):
    cache.append("short", b"a", 1)
    cache.append("renewed", b"a", 1)
    cache.append("renewed", b"b", 60)  # a later append sets the expiry again, from now
    cache.append("shortened", b"a", 60)
    cache.append("shortened", b"b", 1)  # even to a shorter one

    let_time_pass(PAST_ONE_SECOND)

    assert cache.items("short") == []
    assert cache.items("shortened") == []
    assert cache.items("renewed") == [b"a", b"b"]
    assert cache.append("short", b"new", 60) == 1  # an expired list is absent: a new one starts
    assert cache.items("short") == [b"new"]


@pytest.mark.parametrize("ttl", [0, -1])
def test_append_refuses_a_ttl_below_one_second(cache: Cache, ttl):
    with pytest.raises(ValueError):
        cache.append("stream", b"v", ttl)
    assert cache.items("stream") == []


def test_a_key_of_the_other_kind_raises_and_stays_as_it_was(cache: Cache, let_time_pass):
    cache.set("value", b"bytes", 60)
    cache.set("short-value", b"bytes", 1)
    cache.append("stream", b"item", 60)

    with pytest.raises(AppError):
        cache.append("value", b"item", 60)
    with pytest.raises(AppError):
        cache.append("short-value", b"item", 60)  # must not renew its expiry either
    with pytest.raises(AppError):
        cache.items("value")
    with pytest.raises(AppError):
        cache.get("stream")
    with pytest.raises(AppError):
        cache.incr("stream", 60)
    assert cache.add("stream", b"bytes", 60) is False

    assert cache.get("value") == b"bytes"
    assert cache.items("stream") == [b"item"]
    let_time_pass(PAST_ONE_SECOND)
    assert cache.get("short-value") is None
    cache.set("stream", b"replaced", 60)  # set replaces either kind
    assert cache.get("stream") == b"replaced"


# RedisCache when Redis cannot be reached: these need no Redis server.

OPERATIONS: dict[str, Callable[[Cache], object]] = {
    "get": lambda cache: cache.get("k"),
    "set": lambda cache: cache.set("k", b"v", 60),
    "add": lambda cache: cache.add("k", b"v", 60),
    "delete": lambda cache: cache.delete("k"),
    "incr": lambda cache: cache.incr("k", 60),
    "append": lambda cache: cache.append("k", b"v", 60),
    "items": lambda cache: cache.items("k"),
    "ping": lambda cache: cache.ping(),
}


@pytest.mark.parametrize("name", OPERATIONS)
def test_every_operation_raises_service_unavailable_when_nothing_listens(name):
    cache = RedisCache("redis://127.0.0.1:1/0")
    started = time.monotonic()

    with pytest.raises(ServiceUnavailable):
        OPERATIONS[name](cache)

    # A refused connection is immediate; this generous bound only catches a retry loop that would stall requests.
    assert time.monotonic() - started < 1


@pytest.mark.parametrize("name", ["get", "incr", "ping"])
def test_a_server_that_never_answers_raises_service_unavailable_after_the_timeout(name):
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) but never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        cache = RedisCache(f"redis://127.0.0.1:{silent.getsockname()[1]}/0", timeout_seconds=0.2)

        started = time.monotonic()
        with pytest.raises(ServiceUnavailable) as raised:
            OPERATIONS[name](cache)
        elapsed = time.monotonic() - started

    assert elapsed < 1  # a bounded wait (a try and one retry), not redis-py's default ten backed-off retries

    assert "127.0.0.1" not in str(raised.value)  # the URL, which may hold a password, stays out of messages


# MemoryCache's bound: Redis bounds itself through its maxmemory policy, so this is memory-only.


def test_a_full_memory_cache_drops_expired_entries_before_live_ones(clock):
    cache = MemoryCache(clock=clock, max_entries=3)
    cache.set("old-live", b"1", 60)
    cache.set("short", b"2", 1)
    cache.set("new-live", b"3", 60)
    clock.advance(2)

    cache.set("incoming", b"4", 60)

    assert [cache.get(key) for key in ["old-live", "new-live", "incoming"]] == [b"1", b"3", b"4"]


def test_a_full_memory_cache_evicts_the_oldest_write_first(clock):
    cache = MemoryCache(clock=clock, max_entries=3)
    for key in ["a", "b", "c"]:
        cache.set(key, key.encode(), 60)
    cache.set("a", b"rewritten", 60)  # a rewrite makes "a" the newest

    cache.set("d", b"d", 60)
    cache.set("e", b"e", 60)

    assert [cache.get(key) for key in ["a", "b", "c", "d", "e"]] == [b"rewritten", None, None, b"d", b"e"]
