"""Reading a tenant's audit trail back: newest first, by pages, filtered by action and time.

The store's keys sort by time and the action is each record's parent, so a page is one keyset query
(``start_after`` the cursor, or the ``until`` bound) and the action filter is the parent's: no record of another
action or another tenant is read. ``since`` is inclusive and ``until`` exclusive. The cursor is the page's last
key, opaque to clients (base64url), so its format may change without breaking them.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any

from common import errors
from common.audit.events import ACTIONS, REFUSALS, AuditEvent, iso, parse_iso
from common.audit.trail import COLLECTION
from common.metadata import MAX_KEY_LENGTH, MetadataStore

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
STORED_ACTIONS = ACTIONS - REFUSALS  # refusals are log lines only: filtering the store on one finds nothing


@dataclasses.dataclass(frozen=True)
class AuditQuery:
    """``GET /api/v1/audit``'s parameters, checked."""

    tenant: str | None
    action: str | None
    since: dt.datetime | None
    until: dt.datetime | None
    limit: int
    cursor: str | None


def parse(args: Mapping[str, str]) -> AuditQuery:
    """Check the listing's query parameters (``tenant``, ``action``, ``from``, ``to``, ``limit``, ``cursor``); 400."""
    action = args.get("action") or None
    if action is not None and action not in STORED_ACTIONS:
        raise errors.BadRequest(f"query parameter 'action' must be one of {', '.join(sorted(STORED_ACTIONS))}",
                                code="BAD_ACTION")
    since, until = _instant(args, "from"), _instant(args, "to")
    if since and until and since >= until:
        raise errors.BadRequest("query parameter 'from' must be before 'to'")
    cursor = args.get("cursor") or None
    if cursor is not None:
        decode_cursor(cursor)
    return AuditQuery(tenant=args.get("tenant") or None, action=action, since=since, until=until,
                      limit=_limit(args.get("limit")), cursor=cursor)


def view(event: AuditEvent) -> dict[str, Any]:
    """An event as the API shows it."""
    data = event.to_data()
    return {"id": data.pop("event_id"), **data}


def _instant(args: Mapping[str, str], name: str) -> dt.datetime | None:
    raw = args.get(name)
    if not raw:
        return None
    try:
        return parse_iso(raw)
    except ValueError:
        raise errors.BadRequest(f"query parameter {name!r} must be an ISO 8601 time, got {raw[:40]!r}") from None


def _limit(raw: str | None) -> int:
    if not raw:
        return DEFAULT_LIMIT
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_LIMIT:
        raise errors.BadRequest(f"query parameter 'limit' must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)


@dataclasses.dataclass(frozen=True)
class AuditPage:
    events: list[AuditEvent]
    next_cursor: str | None


def list_events(metadata: MetadataStore, tenant_id: str, *, action: str | None = None,
                since: dt.datetime | None = None, until: dt.datetime | None = None, limit: int = 50,
                cursor: str | None = None) -> AuditPage:
    """Return one page of the tenant's records, newest first, and the cursor of the next (None at the end)."""
    bounds = [key for key in (decode_cursor(cursor) if cursor else None, iso(until) if until else None) if key]
    records = metadata.list(COLLECTION, tenant_id, parent=action, order_by="-key", limit=limit + 1,
                            start_after=min(bounds) if bounds else None)
    if since is not None:
        # Newest first: the records older than ``since`` are the tail, and nothing after them is wanted either.
        floor = iso(since)
        records = [record for record in records if record.key >= floor]
    page = records[:limit]
    more = len(records) > limit
    return AuditPage([AuditEvent.from_data(record.data) for record in page],
                     encode_cursor(page[-1].key) if more else None)


def encode_cursor(key: str) -> str:
    """Make a page's last key into an opaque cursor."""
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """Read a cursor back into a key, or raise 400."""
    try:
        key = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise errors.BadRequest("query parameter 'cursor' is not a cursor this API gave", code="BAD_CURSOR") from None
    if not key or len(key) > MAX_KEY_LENGTH:
        raise errors.BadRequest("query parameter 'cursor' is not a cursor this API gave", code="BAD_CURSOR")
    return key
