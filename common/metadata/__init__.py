"""The metadata store port: small JSON records, always scoped to a tenant.

A record lives at (collection, tenant_id, key): ``tenant_id`` is the id of the tenant that owns it (services
pass the caller's ``Tenant.user_id``), the only scope a record is ever visible in. ``parent`` groups records
for listing (a dataset's domain, a turn's session). ``data`` is a JSON-serialisable dict (str, int, float,
bool, None, list, dict; datetimes are stored by callers as ISO strings). Every write bumps ``revision``;
writes can be made conditional on it (compare-and-set), which is how jobs, uploads and fan-in move state
without locks.

Invariants every adapter keeps (``tests/contract/test_metadata_store.py`` checks them on every backend):
- a record is only ever visible to calls that name its tenant; there is no cross-tenant read.
- ``get``/``delete`` of a missing record raise ``NotFound``.
- ``put(..., expected_revision=None)`` creates or raises ``Conflict`` if the record exists;
  ``put(..., expected_revision=n)`` replaces only if the stored revision is ``n``, else ``Conflict``
  (also when the record does not exist); the default ``ANY`` upserts.
- ``created_at`` is set on creation and kept by later writes; ``updated_at`` is set by every write.
- ``list`` returns records ordered by key (or by ``updated_at``/``created_at`` when asked), with a limit;
  ordered by key, ``start_after`` resumes a listing after a key (keyset pagination: the key need not exist).
- Keys and parents are arbitrary strings up to 512 characters (``/`` included); adapters encode them.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any, Literal, Protocol

from common.errors import BadRequest, Conflict

OrderBy = Literal["key", "-key", "created_at", "-created_at", "updated_at", "-updated_at"]


class _Any:
    """Sentinel: the write does not care about the stored revision."""

    def __repr__(self) -> str:
        return "ANY"


ANY: Any = _Any()


@dataclasses.dataclass(frozen=True)
class Record:
    """One stored record.

    ``tenant_id`` is the id of the tenant owning the record (stored as ``tenant_id``; stores written before
    the rename named it ``tenant``, and the adapters migrate them). ``parent`` groups records for listing
    ("" for none); ``revision`` counts writes from 1; both timestamps are aware UTC datetimes.
    """

    collection: str
    tenant_id: str
    key: str
    parent: str
    data: dict[str, Any]
    revision: int
    created_at: dt.datetime
    updated_at: dt.datetime


class MetadataStore(Protocol):
    """Tenant-scoped JSON records with compare-and-set; see the module docstring for invariants."""

    def get(self, collection: str, tenant_id: str, key: str) -> Record:
        """Return the record, or raise ``NotFound``."""

    def put(self, collection: str, tenant_id: str, key: str, data: dict[str, Any], *, parent: str = "",
            expected_revision: int | None | Any = ANY) -> Record:
        """Create or replace the record (conditionally, see the module docstring); return what was stored."""

    def delete(self, collection: str, tenant_id: str, key: str, *, expected_revision: int | Any = ANY) -> None:
        """Remove the record, or raise ``NotFound`` (``Conflict`` when the revision does not match)."""

    def list(self, collection: str, tenant_id: str, *, parent: str | None = None, order_by: OrderBy = "key",
             limit: int | None = None, start_after: str | None = None) -> list[Record]:
        """Return the tenant's records in ``collection`` (only those under ``parent`` when given).

        ``start_after`` (only with ``order_by`` ``key``/``-key``): only keys after it in that order.
        """

    def scan(self, collection: str) -> Iterator[Record]:
        """Yield every record of ``collection`` across tenants; only for maintenance jobs (cleanup)."""

    def ping(self) -> None:
        """Raise ``ServiceUnavailable`` when the backend cannot be reached."""


MAX_KEY_LENGTH = 512


def check_lengths(key: str, parent: str) -> None:
    """Refuse a key or parent longer than ``MAX_KEY_LENGTH`` with ``BadRequest``, on every backend alike."""
    for name, value in (("key", key), ("parent", parent)):
        if len(value) > MAX_KEY_LENGTH:
            raise BadRequest(f"{name} is longer than {MAX_KEY_LENGTH} characters")


def check_start_after(order_by: OrderBy, start_after: str | None) -> None:
    """Refuse ``start_after`` with an order other than by key, on every backend alike (a programming error)."""
    if start_after is not None and order_by not in ("key", "-key"):
        raise ValueError("start_after needs order_by 'key' or '-key'")


def update_record(store: MetadataStore, collection: str, tenant_id: str, key: str,
                  change: Callable[[dict[str, Any]], dict[str, Any] | None], *, attempts: int = 8) -> Record | None:
    """Apply ``change`` to a copy of the record's data and store it with compare-and-set, retrying on races.

    ``change`` returns the new data, or None to leave the record as it is (then this returns None); it may run
    more than once, so it must only compute. A missing record raises ``NotFound``.
    """
    for _ in range(attempts):
        record = store.get(collection, tenant_id, key)
        updated = change(copy.deepcopy(record.data))
        if updated is None:
            return None
        try:
            return store.put(collection, tenant_id, key, updated, parent=record.parent,
                             expected_revision=record.revision)
        except Conflict:
            continue
    raise Conflict(f"{collection} record {key!r} kept changing; try again")
