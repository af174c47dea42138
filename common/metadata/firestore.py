"""``MetadataStore`` on Firestore: one collection per record collection, one document per (tenant_id, key).

The document id is a hash of (tenant_id, key): keys may hold ``/`` and be 512 characters of any script, which a
document id cannot. Listing by parent filters on a digest of it, because Firestore refuses to query on a
value longer than 1500 bytes (512 characters of some scripts are more). ``data`` is stored as JSON text, so
any JSON value round-trips (Firestore arrays cannot hold arrays) and none of its fields is indexed.

The owning tenant's id is the field ``tenant_id``. Documents written before the rename name it ``tenant``
(same document id): reads accept either, writes store ``tenant_id`` and drop ``tenant``, and before a store
first lists a collection it rewrites that collection's old documents (``migrate``), since listing filters
on ``tenant_id`` and would not see them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import threading
from collections.abc import Iterator
from typing import Any

from common.clock import Clock, SystemClock
from common.errors import AppError, BadRequest, ConfigurationError, Conflict, NotFound, ServiceUnavailable
from common.metadata import ANY, OrderBy, Record, check_lengths, check_start_after

SCAN_PAGE_SIZE = 500
PING_TIMEOUT_SECONDS = 5.0
_UPSERT_ATTEMPTS = 5
_PING_COLLECTION = "_ping"
_LEGACY_TENANT_FIELD = "tenant"  # the owner field's name before it became ``tenant_id``


def document_id(tenant_id: str, key: str) -> str:
    """Return the document id of (tenant_id, key): fixed-length, free of ``/``, never shared by two pairs.

    Unchanged by the field's rename (it never hashed a field name): old documents keep their ids.
    """
    return _digest(json.dumps([tenant_id, key]))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@contextlib.contextmanager
def _translated_errors() -> Iterator[None]:
    try:
        yield
    except AppError:
        raise
    except Exception as exc:
        translated = _translate(exc)
        if translated is None:
            raise
        raise translated from exc


@contextlib.contextmanager
def _conflict_when_changed() -> Iterator[None]:
    from google.api_core import exceptions as api

    try:
        yield
    except (api.AlreadyExists, api.FailedPrecondition, api.NotFound) as exc:
        raise Conflict("another writer got to the record first") from exc


def _translate(exc: Exception) -> AppError | None:
    from google.api_core import exceptions as api
    from google.auth import exceptions as auth

    if isinstance(exc, api.NotFound):
        return NotFound("the metadata record does not exist")
    if isinstance(exc, (api.ServiceUnavailable, api.DeadlineExceeded, api.RetryError, api.ResourceExhausted,
                        api.InternalServerError, auth.TransportError, auth.RefreshError)):
        return ServiceUnavailable("the metadata database is unavailable")
    if isinstance(exc, api.InvalidArgument):
        return BadRequest("the metadata database refused the value")
    if isinstance(exc, auth.DefaultCredentialsError):
        return ConfigurationError("no Google credentials for Firestore")
    if isinstance(exc, api.GoogleAPICallError):
        return AppError("metadata database error")  # e.g. FailedPrecondition: a composite index is missing
    return None


def _utc(value: dt.datetime) -> dt.datetime:
    # The client returns its own datetime subclass (with nanoseconds); records hold plain UTC datetimes.
    utc = value.astimezone(dt.UTC)
    return dt.datetime(*utc.timetuple()[:6], utc.microsecond, tzinfo=dt.UTC)


class FirestoreMetadataStore:
    """Records in ``<collection_prefix><collection>``; compare-and-set through update-time preconditions."""

    def __init__(self, client: Any = None, *, clock: Clock | None = None, collection_prefix: str = ""):
        self._client = client
        self._client_lock = threading.Lock()
        self._clock = clock or SystemClock()
        self._prefix = collection_prefix
        self._migrated: set[str] = set()  # collections this store found free of old-layout documents
        self._migrate_lock = threading.Lock()

    def get(self, collection: str, tenant_id: str, key: str) -> Record:
        """Return the record, or raise ``NotFound``."""
        with _translated_errors():
            snapshot = self._document(collection, tenant_id, key).get()
        if not snapshot.exists:
            raise NotFound(f"no {collection} record {key!r}")
        return self._record(collection, snapshot.to_dict())

    def put(self, collection: str, tenant_id: str, key: str, data: dict[str, Any], *, parent: str = "",
            expected_revision: int | None | Any = ANY) -> Record:
        """Create or replace the record (conditionally on ``expected_revision``); return what was stored."""
        check_lengths(key, parent)
        now = self._clock.now().astimezone(dt.UTC)
        fields = {"tenant_id": tenant_id, "key": key, "parent": parent, "parent_digest": _digest(parent),
                  "data": json.dumps(data, ensure_ascii=False), "updated_at": now}
        document = self._document(collection, tenant_id, key)
        with _translated_errors():
            if expected_revision is None:
                stored = self._create(document, fields)
            elif expected_revision is ANY:
                stored = self._upsert(document, fields)
            else:
                snapshot = document.get()
                if not snapshot.exists or snapshot.get("revision") != expected_revision:
                    raise Conflict(f"{collection} record {key!r} is not at revision {expected_revision}")
                stored = self._replace(document, snapshot, fields)
        return self._record(collection, stored)

    def delete(self, collection: str, tenant_id: str, key: str, *, expected_revision: int | Any = ANY) -> None:
        """Remove the record, or raise ``NotFound`` (``Conflict`` when the revision does not match)."""
        document = self._document(collection, tenant_id, key)
        with _translated_errors():
            if expected_revision is ANY:
                document.delete(option=self._db().write_option(exists=True))
                return
            snapshot = document.get()
            if not snapshot.exists:
                raise NotFound(f"no {collection} record {key!r}")
            if snapshot.get("revision") != expected_revision:
                raise Conflict(f"{collection} record {key!r} is not at revision {expected_revision}")
            with _conflict_when_changed():
                document.delete(option=self._db().write_option(last_update_time=snapshot.update_time))

    def list(self, collection: str, tenant_id: str, *, parent: str | None = None, order_by: OrderBy = "key",
             limit: int | None = None, start_after: str | None = None) -> list[Record]:
        """Return the tenant's records in ``collection`` (only those under ``parent`` when given)."""
        from google.cloud import firestore
        from google.cloud.firestore_v1.base_query import FieldFilter

        check_start_after(order_by, start_after)
        self._migrate_once(collection)
        query = self._collection(collection).where(filter=FieldFilter("tenant_id", "==", tenant_id))
        if parent is not None:
            query = query.where(filter=FieldFilter("parent_digest", "==", _digest(parent)))
        if start_after is not None:
            # A range on the field the listing is ordered by: served by the same index as the ordering.
            query = query.where(filter=FieldFilter("key", "<" if order_by == "-key" else ">", start_after))
        field = order_by.removeprefix("-")
        direction = firestore.Query.DESCENDING if order_by.startswith("-") else firestore.Query.ASCENDING
        query = query.order_by(field, direction=direction)
        if field != "key":
            # Equal timestamps are common (one request writes several records): the key makes the order total.
            query = query.order_by("key", direction=direction)
        if limit is not None:
            query = query.limit(limit)
        with _translated_errors():
            return [self._record(collection, snapshot.to_dict()) for snapshot in query.stream()]

    def scan(self, collection: str) -> Iterator[Record]:
        """Yield every record of ``collection`` across tenants; only for maintenance jobs (cleanup)."""
        from google.cloud.firestore_v1.field_path import FieldPath

        query = self._collection(collection).order_by(FieldPath.document_id()).limit(SCAN_PAGE_SIZE)
        page_query = query
        while True:
            # Short paged queries rather than one long stream, so the caller may delete as it goes.
            with _translated_errors():
                page = list(page_query.stream())
            yield from (self._record(collection, snapshot.to_dict()) for snapshot in page)
            if len(page) < SCAN_PAGE_SIZE:
                return
            page_query = query.start_after(page[-1])

    def migrate(self, collection: str) -> int:
        """Rewrite ``collection``'s old-layout documents (owner in ``tenant``) to ``tenant_id``; return how many.

        Only the owner field changes: id, revision and timestamps stay. Safe to run from several processes at
        once, and a single empty query once done. ``list`` runs it once per collection and store.
        """
        # Ordering by a field finds only documents having it, those still to migrate: once a page is rewritten
        # the same query returns the next one (and again any document that changed while we rewrote it).
        query = self._collection(collection).order_by(_LEGACY_TENANT_FIELD).limit(SCAN_PAGE_SIZE)
        migrated = 0
        with _translated_errors():
            while page := list(query.stream()):
                migrated += self._migrate_page(page)
        return migrated

    def ping(self) -> None:
        """Raise ``ServiceUnavailable`` when the backend cannot be reached."""
        try:
            # A point read of a document that need not exist: the cheapest round trip Firestore has.
            self._collection(_PING_COLLECTION).document("ping").get(retry=None, timeout=PING_TIMEOUT_SECONDS)
        except Exception as exc:
            raise ServiceUnavailable("the metadata database is unavailable") from exc

    def _migrate_once(self, collection: str) -> None:
        if collection in self._migrated:
            return
        with self._migrate_lock:
            if collection not in self._migrated:
                self.migrate(collection)
                self._migrated.add(collection)

    def _migrate_page(self, page: list[Any]) -> int:
        from google.api_core import exceptions as api
        from google.cloud import firestore

        def rewrite(snapshot: Any) -> tuple[dict[str, Any], Any]:
            fields = snapshot.to_dict()
            # Conditional on the document being as read: a concurrent write is never undone.
            return ({"tenant_id": fields.get("tenant_id", fields[_LEGACY_TENANT_FIELD]),
                     _LEGACY_TENANT_FIELD: firestore.DELETE_FIELD},
                    self._db().write_option(last_update_time=snapshot.update_time))

        batch = self._db().batch()
        for snapshot in page:
            batch.update(snapshot.reference, *rewrite(snapshot))
        try:
            batch.commit()
            return len(page)
        except (api.FailedPrecondition, api.NotFound, api.Aborted):
            pass  # a batch is all or nothing: one document changed meanwhile, so rewrite the others one by one
        migrated = 0
        for snapshot in page:
            with contextlib.suppress(api.FailedPrecondition, api.NotFound, api.Aborted):
                snapshot.reference.update(*rewrite(snapshot))
                migrated += 1
        return migrated

    def _upsert(self, document: Any, fields: dict[str, Any]) -> dict[str, Any]:
        from google.api_core import exceptions as api
        from google.cloud import firestore

        for _ in range(_UPSERT_ATTEMPTS):
            # Like SQL's UPDATE-then-INSERT: only a create or delete racing with us makes it go round again.
            snapshot = document.get()
            if not snapshot.exists:
                with contextlib.suppress(Conflict):
                    return self._create(document, fields)
                continue
            try:
                # The server increments: concurrent upserts each bump the revision once, and none is refused.
                result = document.update({**fields, "revision": firestore.Increment(1),
                                          _LEGACY_TENANT_FIELD: firestore.DELETE_FIELD})
            except api.NotFound:
                continue
            return {**fields, "revision": result.transform_results[0].integer_value,
                    "created_at": snapshot.get("created_at")}
        raise Conflict("the record kept being created and deleted; try again")

    @staticmethod
    def _create(document: Any, fields: dict[str, Any]) -> dict[str, Any]:
        stored = {**fields, "revision": 1, "created_at": fields["updated_at"]}
        with _conflict_when_changed():
            document.create(stored)
        return stored

    def _replace(self, document: Any, snapshot: Any, fields: dict[str, Any]) -> dict[str, Any]:
        """Write ``fields`` over ``snapshot`` unless the document changed since it was read."""
        from google.cloud import firestore

        stored = {**fields, "revision": snapshot.get("revision") + 1}
        # The update time moves on every write (each one bumps revision): a precondition on it is an atomic
        # compare-and-set that holds no lock, where a transaction's read lock makes contending writers wait.
        with _conflict_when_changed():
            document.update({**stored, _LEGACY_TENANT_FIELD: firestore.DELETE_FIELD},
                            option=self._db().write_option(last_update_time=snapshot.update_time))
        return {**stored, "created_at": snapshot.get("created_at")}

    def _db(self) -> Any:
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    from google.cloud import firestore

                    with _translated_errors():
                        self._client = firestore.Client()
        return self._client

    def _collection(self, collection: str) -> Any:
        return self._db().collection(self._prefix + collection)

    def _document(self, collection: str, tenant_id: str, key: str) -> Any:
        return self._collection(collection).document(document_id(tenant_id, key))

    @staticmethod
    def _record(collection: str, fields: dict[str, Any]) -> Record:
        tenant_id = fields["tenant_id"] if "tenant_id" in fields else fields[_LEGACY_TENANT_FIELD]
        return Record(collection=collection, tenant_id=tenant_id, key=fields["key"], parent=fields["parent"],
                      data=json.loads(fields["data"]), revision=fields["revision"],
                      created_at=_utc(fields["created_at"]), updated_at=_utc(fields["updated_at"]))
