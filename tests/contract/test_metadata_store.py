"""The MetadataStore contract: every invariant of ``common.metadata`` checked on SQLite, Postgres and Firestore."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from common.clock import FakeClock
from common.errors import BadRequest, ConfigurationError, Conflict, NotFound, ServiceUnavailable
from common.metadata import MAX_KEY_LENGTH, MetadataStore
from common.metadata import firestore as firestore_adapter
from common.metadata import sql as sql_adapter
from common.metadata.firestore import FirestoreMetadataStore
from common.metadata.sql import SqlMetadataStore, create_engine_for
from tests.conftest import require_service

BACKENDS = ["sqlite", "postgres", "firestore"]
COLLECTION = "records"
TENANT = "tenant-a"
START = dt.datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=dt.UTC)
StoreFactory = Callable[[], MetadataStore]


def _sqlite_stores(clock: FakeClock, tmp_path, prefix: str) -> Iterator[StoreFactory]:
    engines: list[sa.Engine] = []

    def make() -> MetadataStore:
        engines.append(create_engine_for("", data_dir=str(tmp_path / "data")))
        return SqlMetadataStore(engines[-1], clock=clock)

    yield make
    for engine in engines:
        engine.dispose()


def _postgres_stores(clock: FakeClock, tmp_path, prefix: str) -> Iterator[StoreFactory]:
    url = require_service("TEST_POSTGRES_URL", "PostgreSQL")
    engines = [create_engine_for(url)]

    def make() -> MetadataStore:
        engines.append(create_engine_for(url))
        return SqlMetadataStore(engines[-1], clock=clock, table_prefix=f"{prefix}_")

    yield make
    with engines[0].begin() as connection:
        connection.execute(sa.text(f'DROP TABLE IF EXISTS "{prefix}_records"'))
    for engine in engines:
        engine.dispose()


def _firestore_stores(clock: FakeClock, tmp_path, prefix: str) -> Iterator[StoreFactory]:
    require_service("FIRESTORE_EMULATOR_HOST", "Firestore emulator")
    clients = [_firestore_client()]

    def make() -> MetadataStore:
        clients.append(_firestore_client())
        return FirestoreMetadataStore(clients[-1], clock=clock, collection_prefix=f"{prefix}_")

    yield make
    for collection in clients[0].collections():
        if collection.id.startswith(prefix):
            clients[0].recursive_delete(collection)
    for client in clients:
        client.close()


def _firestore_client():
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore

    # The client reads FIRESTORE_EMULATOR_HOST itself and then talks plain gRPC to it.
    return firestore.Client(project="test-proj", credentials=AnonymousCredentials())


_BACKEND_STORES = {"sqlite": _sqlite_stores, "postgres": _postgres_stores, "firestore": _firestore_stores}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture(params=BACKENDS)
def make_store(request, clock, tmp_path, unique_prefix) -> Iterator[StoreFactory]:
    """Yield a maker of stores (each with its own connections) sharing one fresh namespace of the backend."""
    yield from _BACKEND_STORES[request.param](clock, tmp_path, unique_prefix)


@pytest.fixture
def store(make_store) -> MetadataStore:
    return make_store()


@pytest.fixture(params=BACKENDS)
def unreachable_store(request, tmp_path, monkeypatch) -> MetadataStore:
    if request.param == "sqlite":
        return SqlMetadataStore(create_engine_for(f"sqlite:///{tmp_path}"))  # a directory is no database file
    if request.param == "postgres":
        return SqlMetadataStore(create_engine_for("postgresql://postgres@127.0.0.1:1/test"))  # nothing listens
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:1")
    return FirestoreMetadataStore(_firestore_client())


def _exact(value) -> str:
    # == cannot tell 1 from 1.0 from True; their JSON can.
    return json.dumps(value, sort_keys=True)


def test_ping_succeeds_on_a_reachable_backend(store):
    store.ping()


def test_ping_raises_service_unavailable_when_the_backend_is_unreachable(unreachable_store):
    with pytest.raises(ServiceUnavailable):
        unreachable_store.ping()


def test_get_and_delete_of_a_missing_record_raise_not_found(store):
    with pytest.raises(NotFound):
        store.get(COLLECTION, TENANT, "missing")
    with pytest.raises(NotFound):
        store.delete(COLLECTION, TENANT, "missing")
    with pytest.raises(NotFound):
        store.delete(COLLECTION, TENANT, "missing", expected_revision=1)


def test_put_returns_what_get_then_reads(store, clock):
    stored = store.put(COLLECTION, TENANT, "k", {"a": 1}, parent="p", expected_revision=None)

    assert (stored.collection, stored.tenant_id, stored.key, stored.parent) == (COLLECTION, TENANT, "k", "p")
    assert (stored.data, stored.revision) == ({"a": 1}, 1)
    assert stored.created_at == stored.updated_at == clock.now()
    assert stored.created_at.utcoffset() == dt.timedelta(0)
    assert store.get(COLLECTION, TENANT, "k") == stored


def test_data_round_trips_exactly(store):
    data = {"text": "héllo ✓ 日本 😀 'quoted' \"double\"", "int": 1, "big_int": 2**53 + 1, "negative": -7,
            "float": 0.1, "whole_float": 1.0, "tiny_float": 5e-324, "true": True, "false": False, "none": None,
            "empty_list": [], "empty_dict": {}, "": "empty key",
            "nested": {"list": [1, "two", [3, [4.5, None]], {"deep": [True]}], "a.b/c d": {"x": "y"}}}

    stored = store.put(COLLECTION, TENANT, "k", data)

    assert _exact(stored.data) == _exact(data)
    assert _exact(store.get(COLLECTION, TENANT, "k").data) == _exact(data)


def test_tenants_never_see_each_others_records(store):
    store.put(COLLECTION, "alice", "shared", {"owner": "alice"})
    store.put(COLLECTION, "bob", "shared", {"owner": "bob"})
    # A naive "tenant/key" encoding would make these two one record.
    store.put(COLLECTION, "a", "b/c", {"owner": "a"})
    store.put(COLLECTION, "a/b", "c", {"owner": "a/b"})

    assert store.get(COLLECTION, "alice", "shared").data == {"owner": "alice"}
    assert [record.data for record in store.list(COLLECTION, "bob")] == [{"owner": "bob"}]
    assert [record.key for record in store.list(COLLECTION, "a")] == ["b/c"]
    assert [record.key for record in store.list(COLLECTION, "a/b")] == ["c"]
    assert store.list(COLLECTION, "carol") == []
    with pytest.raises(NotFound):
        store.get(COLLECTION, "carol", "shared")

    store.delete(COLLECTION, "alice", "shared")

    assert store.get(COLLECTION, "bob", "shared").data == {"owner": "bob"}
    with pytest.raises(NotFound):
        store.delete(COLLECTION, "alice", "shared")


def test_collections_are_separate(store):
    store.put("jobs", TENANT, "k", {"kind": "job"})
    store.put("uploads", TENANT, "k", {"kind": "upload"})

    assert store.get("jobs", TENANT, "k").data == {"kind": "job"}
    assert [record.data for record in store.list("uploads", TENANT)] == [{"kind": "upload"}]


def test_create_conflicts_with_an_existing_record_and_keeps_it(store):
    store.put(COLLECTION, TENANT, "k", {"v": 1}, expected_revision=None)

    with pytest.raises(Conflict):
        store.put(COLLECTION, TENANT, "k", {"v": 2}, expected_revision=None)

    assert store.get(COLLECTION, TENANT, "k").data == {"v": 1}


def test_compare_and_set_replaces_only_the_expected_revision(store):
    store.put(COLLECTION, TENANT, "k", {"v": 1}, parent="old", expected_revision=None)

    replaced = store.put(COLLECTION, TENANT, "k", {"v": 2}, parent="new", expected_revision=1)
    with pytest.raises(Conflict):
        store.put(COLLECTION, TENANT, "k", {"v": 3}, expected_revision=1)
    with pytest.raises(Conflict):
        store.put(COLLECTION, TENANT, "k", {"v": 3}, expected_revision=5)

    assert (replaced.revision, replaced.parent) == (2, "new")
    assert store.get(COLLECTION, TENANT, "k") == replaced


def test_compare_and_set_on_a_missing_record_conflicts_and_creates_nothing(store):
    with pytest.raises(Conflict):
        store.put(COLLECTION, TENANT, "k", {"v": 1}, expected_revision=1)
    with pytest.raises(NotFound):
        store.get(COLLECTION, TENANT, "k")


def test_default_put_upserts_and_bumps_the_revision(store):
    created = store.put(COLLECTION, TENANT, "k", {"v": 1}, parent="old")
    replaced = store.put(COLLECTION, TENANT, "k", {"v": 2}, parent="new")

    assert (created.revision, replaced.revision, replaced.data) == (1, 2, {"v": 2})
    assert [record.key for record in store.list(COLLECTION, TENANT, parent="new")] == ["k"]
    assert store.list(COLLECTION, TENANT, parent="old") == []


def test_created_at_is_kept_and_updated_at_moves_on_every_write(store, clock):
    created = store.put(COLLECTION, TENANT, "k", {"v": 1}, expected_revision=None)
    clock.advance(10)
    upserted = store.put(COLLECTION, TENANT, "k", {"v": 2})
    clock.advance(5.5)
    replaced = store.put(COLLECTION, TENANT, "k", {"v": 3}, expected_revision=2)

    assert created.created_at == upserted.created_at == replaced.created_at == START
    assert upserted.updated_at == START + dt.timedelta(seconds=10)
    assert replaced.updated_at == START + dt.timedelta(seconds=15.5)
    assert store.get(COLLECTION, TENANT, "k") == replaced


def test_delete_with_a_revision_removes_only_that_revision(store):
    store.put(COLLECTION, TENANT, "k", {"v": 1})
    store.put(COLLECTION, TENANT, "k", {"v": 2})

    with pytest.raises(Conflict):
        store.delete(COLLECTION, TENANT, "k", expected_revision=1)
    assert store.get(COLLECTION, TENANT, "k").revision == 2

    store.delete(COLLECTION, TENANT, "k", expected_revision=2)
    with pytest.raises(NotFound):
        store.get(COLLECTION, TENANT, "k")


def _write_history(store, clock) -> None:
    """Create and update records so that key, creation and update order all differ, with two equal times."""
    for key, parent in (("c", "p1"), ("a", "p2"), ("d", "p1"), ("b", "p2")):
        store.put(COLLECTION, TENANT, key, {"key": key}, parent=parent)
        clock.advance(1)
    for key, parent in (("a", "p2"), ("c", "p1")):
        store.put(COLLECTION, TENANT, key, {"key": key, "updated": True}, parent=parent)
        clock.advance(1)
    store.put(COLLECTION, TENANT, "f", {"key": "f"}, parent="p1")
    store.put(COLLECTION, TENANT, "e", {"key": "e"}, parent="p2")
    store.put(COLLECTION, "tenant-b", "0", {}, parent="p1")
    store.put("other", TENANT, "0", {}, parent="p1")


@pytest.mark.parametrize(("order_by", "everything", "under_p1"), [
    ("key", "abcdef", "cdf"),
    ("-key", "fedcba", "fdc"),
    ("created_at", "cadbef", "cdf"),
    ("-created_at", "febdac", "fdc"),
    ("updated_at", "dbacef", "dcf"),
    ("-updated_at", "fecabd", "fcd"),
])
def test_list_orders_filters_by_parent_and_limits(store, clock, order_by, everything, under_p1):
    _write_history(store, clock)

    def keys(**options) -> str:
        return "".join(record.key for record in store.list(COLLECTION, TENANT, order_by=order_by, **options))

    assert keys() == everything
    assert keys(limit=2) == everything[:2]
    assert keys(parent="p1") == under_p1
    assert keys(parent="p1", limit=2) == under_p1[:2]
    assert keys(parent="nobody") == ""


def test_list_by_key_sorts_by_code_point_on_every_backend(store):
    keys = ["b", "B", "a", "_", "é", "Z", "10", "9", "a b", "a/b", "a-b", "ab", "😀", "ｚ", "Ä"]
    for key in keys:
        store.put(COLLECTION, TENANT, key, {})

    assert [record.key for record in store.list(COLLECTION, TENANT)] == sorted(keys)


def test_list_with_an_empty_parent_returns_only_records_without_one(store):
    store.put(COLLECTION, TENANT, "top", {})
    store.put(COLLECTION, TENANT, "child", {}, parent="top")

    assert [record.key for record in store.list(COLLECTION, TENANT, parent="")] == ["top"]


@pytest.mark.parametrize(("order_by", "after", "everything", "under_p1"), [
    ("key", "b", "cdef", "cdf"),
    ("key", "bb", "cdef", "cdf"),  # a key no record has still marks a place
    ("-key", "e", "dcba", "dc"),
    ("-key", "", "", ""),
])
def test_list_resumes_after_a_key_in_either_direction(store, clock, order_by, after, everything, under_p1):
    _write_history(store, clock)

    def keys(**options) -> str:
        return "".join(record.key for record in store.list(COLLECTION, TENANT, order_by=order_by,
                                                           start_after=after, **options))

    assert keys() == everything
    assert keys(limit=2) == everything[:2]
    assert keys(parent="p1") == under_p1


def test_pages_by_start_after_cover_every_record_once(store):
    keys = [f"2026-03-01T12:{minute:02d}:00Z-{suffix}" for minute in range(5) for suffix in ("a", "b")]
    for key in keys:
        store.put(COLLECTION, TENANT, key, {}, parent="audit")
    store.put(COLLECTION, "tenant-b", keys[3], {}, parent="audit")
    pages, cursor = [], None
    while page := store.list(COLLECTION, TENANT, parent="audit", order_by="-key", limit=3, start_after=cursor):
        pages.append([record.key for record in page])
        cursor = page[-1].key

    assert [len(page) for page in pages] == [3, 3, 3, 1]
    assert sum(pages, []) == sorted(keys, reverse=True)


def test_start_after_needs_an_order_by_key(store):
    with pytest.raises(ValueError):
        store.list(COLLECTION, TENANT, order_by="created_at", start_after="a")


ODD_KEYS = {
    "slashes": "a/b/c", "edge-slashes": "/leading/and/trailing/", "space": "with space",
    "quotes": "quotes ' \" `", "backslash": "back\\slash", "percent-encoded": "percent%2Fencoded", "dot": ".",
    "dot-dot": "..", "reserved-looking": "__name__", "scripts": "日本語/ключ/é", "emoji": "emoji 😀",
    "newline": "line\nbreak", "empty": "", "longest-ascii": "x" * MAX_KEY_LENGTH,
    "longest-2-byte": "é" * MAX_KEY_LENGTH, "longest-4-byte": "😀" * MAX_KEY_LENGTH,
}


@pytest.mark.parametrize("key", list(ODD_KEYS.values()), ids=list(ODD_KEYS))
def test_any_key_and_parent_up_to_the_maximum_length_work(store, key):
    stored = store.put(COLLECTION, TENANT, key, {"key": key}, parent=key)
    store.put(COLLECTION, TENANT, "sibling", {}, parent="other")

    assert store.get(COLLECTION, TENANT, key) == stored
    assert store.list(COLLECTION, TENANT, parent=key) == [stored]
    store.delete(COLLECTION, TENANT, key, expected_revision=1)
    with pytest.raises(NotFound):
        store.get(COLLECTION, TENANT, key)


def test_keys_and_parents_longer_than_the_maximum_are_refused(store):
    too_long = "k" * (MAX_KEY_LENGTH + 1)

    with pytest.raises(BadRequest):
        store.put(COLLECTION, TENANT, too_long, {})
    with pytest.raises(BadRequest):
        store.put(COLLECTION, TENANT, "k", {}, parent=too_long)
    assert store.list(COLLECTION, TENANT) == []


@pytest.fixture
def small_scan_pages(monkeypatch) -> None:
    # Pages of two make a handful of records span several pages.
    monkeypatch.setattr(sql_adapter, "SCAN_PAGE_SIZE", 2)
    monkeypatch.setattr(firestore_adapter, "SCAN_PAGE_SIZE", 2)


def test_scan_yields_every_record_of_the_collection_across_tenants(store, small_scan_pages):
    expected = {("alice", "1"), ("alice", "2"), ("bob", "1"), ("carol", "x/y"), ("carol", "z")}
    for tenant, key in expected:
        store.put(COLLECTION, tenant, key, {"tenant": tenant})
    store.put("other", "alice", "3", {})

    scanned = [(record.tenant_id, record.key) for record in store.scan(COLLECTION)]

    assert sorted(scanned) == sorted(expected)
    assert all(record.collection == COLLECTION for record in store.scan(COLLECTION))


def test_scan_allows_deleting_each_record_it_yields(store, small_scan_pages):
    for index in range(5):
        store.put(COLLECTION, f"tenant-{index % 2}", f"key-{index}", {})

    deleted = 0
    for record in store.scan(COLLECTION):
        store.delete(record.collection, record.tenant_id, record.key)
        deleted += 1

    assert deleted == 5
    assert list(store.scan(COLLECTION)) == []


def test_concurrent_compare_and_set_increments_lose_no_update(store):
    threads, increments = 8, 10
    store.put(COLLECTION, TENANT, "counter", {"count": 0}, expected_revision=None)
    start_together = threading.Barrier(threads)

    def increment_repeatedly() -> None:
        start_together.wait()
        for _ in range(increments):
            while True:
                current = store.get(COLLECTION, TENANT, "counter")
                try:
                    store.put(COLLECTION, TENANT, "counter", {"count": current.data["count"] + 1},
                              expected_revision=current.revision)
                    break
                except Conflict:
                    continue

    with ThreadPoolExecutor(threads) as pool:
        for outcome in [pool.submit(increment_repeatedly) for _ in range(threads)]:
            outcome.result(timeout=120)

    final = store.get(COLLECTION, TENANT, "counter")
    assert (final.data["count"], final.revision) == (threads * increments, threads * increments + 1)


def test_concurrent_upserts_each_bump_the_revision_once(store):
    threads, writes = 8, 10
    start_together = threading.Barrier(threads)

    def upsert_repeatedly(thread: int) -> None:
        start_together.wait()
        for write in range(writes):
            store.put(COLLECTION, TENANT, "shared", {"thread": thread, "write": write})

    with ThreadPoolExecutor(threads) as pool:
        for outcome in [pool.submit(upsert_repeatedly, thread) for thread in range(threads)]:
            outcome.result(timeout=120)

    assert store.get(COLLECTION, TENANT, "shared").revision == threads * writes


def test_stores_starting_at_once_on_a_new_namespace_all_work(make_store):
    stores = [make_store() for _ in range(4)]
    start_together = threading.Barrier(len(stores))

    def first_write(index: int) -> None:
        start_together.wait()
        stores[index].put(COLLECTION, TENANT, f"k{index}", {})

    with ThreadPoolExecutor(len(stores)) as pool:
        list(pool.map(first_write, range(len(stores))))

    assert [record.key for record in stores[0].list(COLLECTION, TENANT)] == ["k0", "k1", "k2", "k3"]


# Stores written before the owner field was renamed from ``tenant`` to ``tenant_id``: the new code must take them
# over in place. The old layouts are spelled out here, frozen, rather than derived from the adapters.

class _OldSqlLayout:
    """The SQL table as the adapter created it before the rename: the owner in a column ``tenant``."""

    def __init__(self, engine: sa.Engine, name: str):
        def text(length: int) -> sa.types.TypeEngine:
            return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")

        self.engine, self.name = engine, name
        self.table = sa.Table(
            name, sa.MetaData(),
            sa.Column("collection", text(255), primary_key=True),
            sa.Column("tenant", text(255), primary_key=True),
            sa.Column("key", text(MAX_KEY_LENGTH), primary_key=True),
            sa.Column("parent", text(MAX_KEY_LENGTH), nullable=False),
            sa.Column("data", sa.Text, nullable=False),
            sa.Column("revision", sa.Integer, nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            sa.Index(f"{name}_by_parent", "collection", "tenant", "parent"),
        )
        self.table.create(engine)

    def write(self, collection: str, tenant: str, key: str, data: dict, *, parent: str = "", at=START) -> None:
        row = {"collection": collection, "tenant": tenant, "key": key, "parent": parent, "data": json.dumps(data),
               "revision": 1, "created_at": at, "updated_at": at}
        with self.engine.begin() as connection:
            connection.execute(sa.insert(self.table).values(row))

    def owner_fields(self, collection: str, tenant: str, key: str) -> set[str]:
        """Return the names the stored record gives its owner (the table's columns: one name for every row)."""
        return {column["name"] for column in sa.inspect(self.engine).get_columns(self.name)} & {"tenant", "tenant_id"}


class _OldFirestoreLayout:
    """Firestore documents as the adapter wrote them before the rename: the owner in a field ``tenant``."""

    def __init__(self, client, prefix: str):
        self.client, self.prefix = client, prefix

    def write(self, collection: str, tenant: str, key: str, data: dict, *, parent: str = "", at=START) -> None:
        self._document(collection, tenant, key).set({
            "tenant": tenant, "key": key, "parent": parent,
            "parent_digest": hashlib.sha256(parent.encode("utf-8")).hexdigest(), "data": json.dumps(data),
            "revision": 1, "created_at": at, "updated_at": at})

    def owner_fields(self, collection: str, tenant: str, key: str) -> set[str]:
        """Return the names the stored document gives its owner; it must still be at its old id."""
        snapshot = self._document(collection, tenant, key).get()
        assert snapshot.exists, "the document moved to another id"
        return set(snapshot.to_dict()) & {"tenant", "tenant_id"}

    def _document(self, collection: str, tenant: str, key: str):
        # The id formula of the old code, spelled out: the rename must not move any document.
        document_id = hashlib.sha256(json.dumps([tenant, key]).encode("utf-8")).hexdigest()
        return self.client.collection(f"{self.prefix}{collection}").document(document_id)


@pytest.fixture
def old_layout(request, make_store, tmp_path, unique_prefix) -> Iterator[_OldSqlLayout | _OldFirestoreLayout]:
    """Yield a writer of old-layout records into the very namespace that ``make_store``'s stores use."""
    backend = request.node.callspec.params["make_store"]
    if backend == "firestore":
        client = _firestore_client()
        yield _OldFirestoreLayout(client, f"{unique_prefix}_")
        client.close()
        return
    if backend == "sqlite":
        engine, name = create_engine_for("", data_dir=str(tmp_path / "data")), "records"
    else:
        engine, name = create_engine_for(require_service("TEST_POSTGRES_URL", "PostgreSQL")), f"{unique_prefix}_records"
    yield _OldSqlLayout(engine, name)
    engine.dispose()


OLD_RECORDS = [("alice", "a", "p1"), ("alice", "b/c", "p2"), ("alice", "d", "p1"), ("bob", "a", "p1"),
               ("carol", "z", "")]


def _write_old_records(old_layout) -> None:
    for index, (tenant, key, parent) in enumerate(OLD_RECORDS):
        old_layout.write(COLLECTION, tenant, key, {"index": index}, parent=parent,
                         at=START - dt.timedelta(minutes=len(OLD_RECORDS) - index))
    old_layout.write("other", "alice", "x", {}, parent="p1")


def test_a_store_of_the_old_layout_is_read_listed_scanned_and_written(make_store, old_layout, clock,
                                                                       small_scan_pages):
    _write_old_records(old_layout)  # five records of one collection: migrating it takes several pages of two
    store = make_store()

    first = store.get(COLLECTION, "alice", "a")
    assert (first.collection, first.tenant_id, first.key, first.parent) == (COLLECTION, "alice", "a", "p1")
    assert (first.data, first.revision, first.created_at) == ({"index": 0}, 1, START - dt.timedelta(minutes=5))
    assert [record.key for record in store.list(COLLECTION, "alice")] == ["a", "b/c", "d"]
    assert [record.key for record in store.list(COLLECTION, "alice", parent="p1")] == ["a", "d"]
    assert [record.key for record in store.list(COLLECTION, "alice", order_by="-updated_at", limit=2)] == ["d", "b/c"]
    assert [(record.tenant_id, record.key) for record in store.list(COLLECTION, "bob")] == [("bob", "a")]
    assert store.list(COLLECTION, "dave") == []
    assert [record.key for record in store.list("other", "alice", parent="p1")] == ["x"]
    assert sorted((record.tenant_id, record.key) for record in store.scan(COLLECTION)) == sorted(
        (tenant, key) for tenant, key, _ in OLD_RECORDS)
    assert store.get(COLLECTION, "alice", "b/c") == next(r for r in store.scan(COLLECTION) if r.key == "b/c")

    # Writes reach the old records themselves (same identity), never a second copy next to them.
    with pytest.raises(Conflict):
        store.put(COLLECTION, "alice", "a", {}, expected_revision=None)
    clock.advance(60)
    replaced = store.put(COLLECTION, "alice", "a", {"v": 2}, parent="p1", expected_revision=1)
    upserted = store.put(COLLECTION, "alice", "d", {"v": 2}, parent="p1")
    store.put(COLLECTION, "alice", "e", {"new": True}, parent="p1")
    store.delete(COLLECTION, "bob", "a", expected_revision=1)

    assert (replaced.revision, replaced.created_at) == (2, first.created_at)
    assert (upserted.revision, upserted.data) == (2, {"v": 2})
    assert store.get(COLLECTION, "alice", "a") == replaced
    assert [record.key for record in store.list(COLLECTION, "alice", parent="p1")] == ["a", "d", "e"]
    assert store.list(COLLECTION, "bob") == []
    assert sorted(record.key for record in store.scan(COLLECTION)) == ["a", "b/c", "d", "e", "z"]
    for tenant, key, _ in OLD_RECORDS[:3]:
        assert old_layout.owner_fields(COLLECTION, tenant, key) == {"tenant_id"}, key

    # Starting again on the migrated namespace changes nothing.
    again = make_store()
    assert again.list(COLLECTION, "alice") == store.list(COLLECTION, "alice")
    assert again.get(COLLECTION, "carol", "z").tenant_id == "carol"


def test_stores_starting_at_once_on_the_old_layout_all_take_it_over(make_store, old_layout, small_scan_pages):
    old_keys = [f"old-{index}" for index in range(7)]
    for key in old_keys:
        old_layout.write(COLLECTION, TENANT, key, {})
    stores = [make_store() for _ in range(4)]
    start_together = threading.Barrier(len(stores))

    def first_calls(index: int) -> list[str]:
        start_together.wait()
        listed = [record.key for record in stores[index].list(COLLECTION, TENANT)]
        stores[index].put(COLLECTION, TENANT, f"new-{index}", {})
        return listed

    with ThreadPoolExecutor(len(stores)) as pool:
        first_lists = list(pool.map(first_calls, range(len(stores))))

    assert all(set(old_keys) <= set(listed) for listed in first_lists), first_lists
    new_keys = [f"new-{index}" for index in range(len(stores))]
    assert [record.key for record in stores[0].list(COLLECTION, TENANT)] == new_keys + old_keys
    assert old_layout.owner_fields(COLLECTION, TENANT, old_keys[-1]) == {"tenant_id"}


@pytest.mark.parametrize("make_store", ["sqlite", "postgres"], indirect=True)
def test_the_renamed_sql_table_keeps_its_primary_key_and_parent_index(make_store, old_layout):
    old_layout.write(COLLECTION, TENANT, "k", {}, parent="p")
    make_store().get(COLLECTION, TENANT, "k")  # the first call takes the table over

    inspector = sa.inspect(old_layout.engine)
    indexes = {index["name"]: index["column_names"] for index in inspector.get_indexes(old_layout.name)}
    assert indexes[f"{old_layout.name}_by_parent"] == ["collection", "tenant_id", "parent"]
    assert inspector.get_pk_constraint(old_layout.name)["constrained_columns"] == ["collection", "tenant_id", "key"]
    table = old_layout.engine.dialect.identifier_preparer.quote(old_layout.name)
    query = f"SELECT key FROM {table} WHERE collection = 'c' AND tenant_id = 't' AND parent = 'p'"
    with old_layout.engine.begin() as connection:
        if old_layout.engine.dialect.name == "sqlite":
            plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {query}").fetchall()
        else:  # a tiny table is cheaper to read whole: ask whether the index can serve the query at all
            connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
            plan = connection.exec_driver_sql(f"EXPLAIN {query}").fetchall()
    assert f"{old_layout.name}_by_parent" in str(plan), plan


# The SQL engine factory: what every SQL store above is built with.

def test_an_empty_url_means_a_sqlite_file_in_the_data_dir_that_tolerates_concurrent_writers(tmp_path):
    data_dir = tmp_path / "not" / "yet" / "there"
    engine = create_engine_for("", data_dir=str(data_dir))

    with engine.connect() as connection:
        journal_mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
        busy_timeout_ms = connection.exec_driver_sql("PRAGMA busy_timeout").scalar()
    engine.dispose()

    assert (data_dir / "metadata.sqlite3").is_file()
    assert (journal_mode, busy_timeout_ms) == ("wal", 30_000)


@pytest.mark.parametrize("url", ["postgres://app@db.internal/convo", "postgresql://app@db.internal/convo"])
def test_plain_postgres_urls_use_the_pg8000_driver(url):
    engine = create_engine_for(url)  # builds without connecting

    assert engine.url.drivername == "postgresql+pg8000"
    assert (engine.url.host, engine.url.database) == ("db.internal", "convo")


class _RecordingConnector:
    calls: list[tuple] = []

    def connect(self, instance: str, driver: str, **options) -> None:
        self.calls.append((instance, driver, options))
        raise ConnectionRefusedError("no Cloud SQL here")


def test_a_cloud_sql_instance_is_reached_through_the_connector(monkeypatch):
    monkeypatch.setattr("google.cloud.sql.connector.Connector", _RecordingConnector)
    monkeypatch.setattr(_RecordingConnector, "calls", [])
    engine = create_engine_for("postgresql+pg8000://app:secret@/convo", cloud_sql_instance="proj:region:db")

    with pytest.raises(ConnectionRefusedError):
        engine.connect()

    assert _RecordingConnector.calls == [("proj:region:db", "pg8000", {
        "user": "app", "password": "secret", "db": "convo", "enable_iam_auth": False})]


def test_a_cloud_sql_instance_without_a_database_url_is_a_configuration_error():
    with pytest.raises(ConfigurationError):
        create_engine_for("", cloud_sql_instance="proj:region:db")
