"""``MetadataStore`` on SQL (SQLite locally, Postgres deployed) through SQLAlchemy Core: one table of records.

The owning tenant's id is the column ``tenant_id``. Tables created before it was renamed name that column
``tenant``: the store renames it in place when it first touches the table (see ``_prepare_table``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import sqlalchemy as sa

from common.clock import Clock, SystemClock
from common.errors import AppError, BadRequest, Conflict, NotFound, ServiceUnavailable
from common.metadata import ANY, MAX_KEY_LENGTH, OrderBy, Record, check_lengths, check_start_after
from common.metadata.sql_engine import create_engine_for

__all__ = ["SqlMetadataStore", "create_engine_for"]

SCAN_PAGE_SIZE = 500
_UPSERT_ATTEMPTS = 10
_ID_LENGTH = 255
_LEGACY_TENANT_COLUMN = "tenant"  # the owner column's name before it became ``tenant_id``


class _UtcDateTime(sa.TypeDecorator):
    """Aware UTC datetimes on every dialect (SQLite keeps naive text, Postgres returns its session zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        return None if value is None else value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _text(length: int) -> sa.types.TypeEngine:
    # Byte-order collation on Postgres, so listings sort by code point exactly as SQLite and Firestore do.
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _records_table(name: str) -> sa.Table:
    return sa.Table(
        name, sa.MetaData(),
        sa.Column("collection", _text(_ID_LENGTH), primary_key=True),
        sa.Column("tenant_id", _text(_ID_LENGTH), primary_key=True),
        sa.Column("key", _text(MAX_KEY_LENGTH), primary_key=True),
        sa.Column("parent", _text(MAX_KEY_LENGTH), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("created_at", _UtcDateTime, nullable=False),
        sa.Column("updated_at", _UtcDateTime, nullable=False),
        sa.Index(f"{name}_by_parent", "collection", "tenant_id", "parent"),
    )


@contextlib.contextmanager
def _translated_errors() -> Iterator[None]:
    try:
        yield
    except sa.exc.IntegrityError as exc:
        raise Conflict("the record was written concurrently") from exc
    except (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.DisconnectionError, sa.exc.TimeoutError) as exc:
        raise ServiceUnavailable("the metadata database is unavailable") from exc
    except sa.exc.DataError as exc:
        raise BadRequest("a value does not fit the metadata database") from exc
    except sa.exc.SQLAlchemyError as exc:
        raise AppError("metadata database error") from exc


class SqlMetadataStore:
    """Records in ``<table_prefix>records``, keyed by (collection, tenant_id, key); writes compare-and-set revision."""

    def __init__(self, engine: sa.Engine, *, clock: Clock | None = None, table_prefix: str = ""):
        self._engine = engine
        self._clock = clock or SystemClock()
        self._table = _records_table(f"{table_prefix}records")
        self._table_ready = False
        self._table_lock = threading.Lock()

    def get(self, collection: str, tenant_id: str, key: str) -> Record:
        """Return the record, or raise ``NotFound``."""
        with _translated_errors():
            self._ensure_table()
            with self._engine.connect() as connection:
                row = connection.execute(sa.select(self._table).where(*self._identity(collection, tenant_id, key)))
                found = row.one_or_none()
        if found is None:
            raise NotFound(f"no {collection} record {key!r}")
        return self._record(found._mapping)

    def put(self, collection: str, tenant_id: str, key: str, data: dict[str, Any], *, parent: str = "",
            expected_revision: int | None | Any = ANY) -> Record:
        """Create or replace the record (conditionally on ``expected_revision``); return what was stored."""
        check_lengths(key, parent)
        values = {"parent": parent, "data": json.dumps(data, ensure_ascii=False), "updated_at": self._clock.now()}
        with _translated_errors():
            self._ensure_table()
            if expected_revision is None:
                return self._insert(collection, tenant_id, key, values)
            if expected_revision is ANY:
                return self._upsert(collection, tenant_id, key, values)
            return self._replace(collection, tenant_id, key, values, expected_revision)

    def delete(self, collection: str, tenant_id: str, key: str, *, expected_revision: int | Any = ANY) -> None:
        """Remove the record, or raise ``NotFound`` (``Conflict`` when the revision does not match)."""
        conditions = list(self._identity(collection, tenant_id, key))
        if expected_revision is not ANY:
            conditions.append(self._table.c.revision == expected_revision)
        with _translated_errors():
            self._ensure_table()
            with self._engine.begin() as connection:
                deleted = connection.execute(sa.delete(self._table).where(*conditions)).rowcount
        if deleted:
            return
        self.get(collection, tenant_id, key)  # raises NotFound when the record is missing
        raise Conflict(f"{collection} record {key!r} is not at revision {expected_revision}")

    def list(self, collection: str, tenant_id: str, *, parent: str | None = None, order_by: OrderBy = "key",
             limit: int | None = None, start_after: str | None = None) -> list[Record]:
        """Return the tenant's records in ``collection`` (only those under ``parent`` when given)."""
        check_start_after(order_by, start_after)
        columns = self._table.c
        query = sa.select(self._table).where(columns.collection == collection, columns.tenant_id == tenant_id)
        if parent is not None:
            query = query.where(columns.parent == parent)
        if start_after is not None:
            query = query.where(columns.key < start_after if order_by == "-key" else columns.key > start_after)
        field = order_by.removeprefix("-")
        direction = sa.desc if order_by.startswith("-") else sa.asc
        # Equal timestamps are common (one request writes several records): the key makes the order total.
        ordering = [direction(columns[field])] + ([direction(columns.key)] if field != "key" else [])
        query = query.order_by(*ordering).limit(limit)
        with _translated_errors():
            self._ensure_table()
            with self._engine.connect() as connection:
                return [self._record(row._mapping) for row in connection.execute(query)]

    def scan(self, collection: str) -> Iterator[Record]:
        """Yield every record of ``collection`` across tenants; only for maintenance jobs (cleanup)."""
        columns = self._table.c
        query = (sa.select(self._table).where(columns.collection == collection)
                 .order_by(columns.tenant_id, columns.key).limit(SCAN_PAGE_SIZE))
        page_query = query
        while True:
            # Pages by keyset, holding no connection between pages, so the caller may delete as it goes.
            with _translated_errors():
                self._ensure_table()
                with self._engine.connect() as connection:
                    page = [self._record(row._mapping) for row in connection.execute(page_query)]
            yield from page
            if len(page) < SCAN_PAGE_SIZE:
                return
            last = page[-1]
            page_query = query.where(sa.tuple_(columns.tenant_id, columns.key) > (last.tenant_id, last.key))

    def ping(self) -> None:
        """Raise ``ServiceUnavailable`` when the backend cannot be reached."""
        try:
            with self._engine.connect() as connection:
                connection.execute(sa.select(1))
        except sa.exc.SQLAlchemyError as exc:
            raise ServiceUnavailable("the metadata database is unavailable") from exc

    def _insert(self, collection: str, tenant_id: str, key: str, values: dict[str, Any]) -> Record:
        now = values["updated_at"]
        row = {"collection": collection, "tenant_id": tenant_id, "key": key, **values, "revision": 1, "created_at": now}
        try:
            with self._engine.begin() as connection:
                connection.execute(sa.insert(self._table).values(row))
        except sa.exc.IntegrityError as exc:
            raise Conflict(f"{collection} record {key!r} already exists") from exc
        return self._record(row)

    def _replace(self, collection: str, tenant_id: str, key: str, values: dict[str, Any], expected: int) -> Record:
        columns = self._table.c
        statement = (sa.update(self._table)
                     .where(*self._identity(collection, tenant_id, key), columns.revision == expected)
                     .values(**values, revision=expected + 1).returning(columns.created_at))
        with self._engine.begin() as connection:
            stored = connection.execute(statement).one_or_none()
        if stored is None:
            raise Conflict(f"{collection} record {key!r} is not at revision {expected}")
        return self._record({"collection": collection, "tenant_id": tenant_id, "key": key, **values,
                             "revision": expected + 1, "created_at": stored.created_at})

    def _upsert(self, collection: str, tenant_id: str, key: str, values: dict[str, Any]) -> Record:
        columns = self._table.c
        statement = (sa.update(self._table).where(*self._identity(collection, tenant_id, key))
                     .values(**values, revision=columns.revision + 1)
                     .returning(columns.revision, columns.created_at))
        for _ in range(_UPSERT_ATTEMPTS):
            with self._engine.begin() as connection:
                stored = connection.execute(statement).one_or_none()
            if stored is not None:
                return self._record({"collection": collection, "tenant_id": tenant_id, "key": key, **values,
                                     "revision": stored.revision, "created_at": stored.created_at})
            with contextlib.suppress(Conflict):  # created meanwhile by another writer: update it instead
                return self._insert(collection, tenant_id, key, values)
        raise Conflict(f"{collection} record {key!r} kept changing; try again")

    def _identity(self, collection: str, tenant_id: str, key: str) -> tuple[sa.ColumnElement[bool], ...]:
        columns = self._table.c
        return columns.collection == collection, columns.tenant_id == tenant_id, columns.key == key

    def _ensure_table(self) -> None:
        if self._table_ready:
            return
        with self._table_lock:
            if self._table_ready:
                return
            try:
                self._prepare_table()
            except (sa.exc.ProgrammingError, sa.exc.OperationalError, sa.exc.IntegrityError):
                # Another process created or renamed it between our look and our change: look again, finding it done.
                self._prepare_table()
            self._table_ready = True

    def _prepare_table(self) -> None:
        """Create the table, or bring one of the old layout up to date; idempotent, a no-op once done.

        The old layout named the owner column ``tenant``. ``RENAME COLUMN`` (SQLite >= 3.25, Postgres) keeps
        the rows, the primary key and the ``_by_parent`` index, which then cover ``tenant_id``: those
        reference the column itself, not its name. The rename is one statement, so a concurrent starter
        either sees the old layout (and its own rename fails, as the column is gone) or the new one.
        """
        name = self._table.name
        inspector = sa.inspect(self._engine)  # a fresh one each time: an inspector caches what it read
        if not inspector.has_table(name):
            self._table.create(self._engine, checkfirst=True)
            return
        columns = {column["name"] for column in inspector.get_columns(name)}
        if _LEGACY_TENANT_COLUMN in columns and "tenant_id" not in columns:
            table = self._engine.dialect.identifier_preparer.quote(name)
            with self._engine.begin() as connection:
                connection.execute(sa.text(f"ALTER TABLE {table} RENAME COLUMN {_LEGACY_TENANT_COLUMN} TO tenant_id"))

    @staticmethod
    def _record(fields: Mapping[str, Any]) -> Record:
        return Record(collection=fields["collection"], tenant_id=fields["tenant_id"], key=fields["key"],
                      parent=fields["parent"], data=json.loads(fields["data"]), revision=fields["revision"],
                      created_at=fields["created_at"].astimezone(dt.UTC),
                      updated_at=fields["updated_at"].astimezone(dt.UTC))
