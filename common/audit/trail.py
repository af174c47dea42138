"""Appending audit records: to the store (append-only, collection ``audit``) and as one structured log line.

Every record is written create-only under a key that sorts by time (``<ISO instant>-<random>``) with the action
as its parent, so a tenant's trail lists newest first and filters by action without reading other records.
Each is also logged on the ``convoinsight.audit`` logger with ``audit: true`` (``LOG_FORMAT=json`` makes that a
``jsonPayload`` field), which a Cloud Logging sink selects into its own bucket and retention
(terraform/modules/audit_log). The logger is pinned at INFO: LOG_LEVEL never silences the trail.

Ordering, so that nothing happens unrecorded (``audited``): the intent (outcome ``attempted``) is appended
before the change; when that write fails the operation answers 503 and changes nothing. The outcome (``success``
or ``failure`` with its status) is appended after; if only that write fails, the change has happened and its
intent is on record, so the answer stands and the outcome still reaches the log stream. A first use
(``first_use``) flips a flag on the key's record first, compare-and-set, and appends only when it flipped; if the
append fails the flag is put back and the use answers 503. Refusals (``log_refusal``) are log lines only.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import datetime as dt
import itertools
import logging
import uuid
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from common import errors
from common.audit.events import REFUSALS, AuditEvent, iso, safe_details
from common.metadata import Record, update_record

if TYPE_CHECKING:
    from common.clock import Clock
    from common.metadata import MetadataStore

COLLECTION = "audit"
FIRST_USED_FIELD = "first_used_at"  # on a key's or connection's record: set once, when it is first used
MAX_CLIENT_CHARS = 200

# Orders one process's records of the same instant (an intent and its outcome) as they were written.
_SEQUENCE = itertools.count()
log = logging.getLogger("convoinsight.audit")
log.setLevel(logging.INFO)


class AuditPorts(Protocol):
    @property
    def metadata(self) -> MetadataStore: ...

    @property
    def clock(self) -> Clock: ...


@dataclasses.dataclass(frozen=True)
class Origin:
    """Where the request being answered came from: its id (``X-Request-Id``) and the client's address chain."""

    request_id: str = ""
    client: str = ""


_NO_ORIGIN = Origin()  # outside a request (the cleanup job, a task): no request id, no client
_ORIGIN: contextvars.ContextVar[Origin | None] = contextvars.ContextVar("audit_origin", default=None)


@contextlib.contextmanager
def request_origin(request_id: str, remote_addr: str | None, forwarded_for: str | None) -> Iterator[None]:
    """Attribute the records appended while a request is answered to its id and client (the router sets it)."""
    # Every hop as the proxies reported it, then the peer: which hop to trust is the reader's call, not ours.
    hops = [hop.strip() for hop in (forwarded_for or "").split(",") if hop.strip()] + [remote_addr or ""]
    token = _ORIGIN.set(Origin(request_id, ", ".join(hop for hop in hops if hop)[:MAX_CLIENT_CHARS]))
    try:
        yield
    finally:
        _ORIGIN.reset(token)


@dataclasses.dataclass
class Outcome:
    """What the audited block tells its outcome record: the status it answers and safe details learnt meanwhile."""

    status: int = 200
    details: dict[str, Any] = dataclasses.field(default_factory=dict)


def record(deps: AuditPorts, tenant_id: str, action: str, resource: str, *, outcome: str = "success",
           status: int = 200, actor: str | None = None, details: Mapping[str, Any] | None = None) -> AuditEvent:
    """Append one record and log it; raise ServiceUnavailable (503) when the store cannot take it."""
    if action in REFUSALS:
        raise ValueError(f"{action} is logged only: use log_refusal")
    origin, at = _ORIGIN.get() or _NO_ORIGIN, deps.clock.now()
    event = AuditEvent(tenant_id=tenant_id, actor=actor or tenant_id, action=action, resource=resource,
                       outcome=outcome, status=status, request_id=origin.request_id, client=origin.client, at=at,
                       details=safe_details(details), event_id=_event_key(at))
    try:
        deps.metadata.put(COLLECTION, tenant_id, event.event_id, event.to_data(), parent=action,
                          expected_revision=None)
    except errors.AppError as exc:
        _emit(event, logging.ERROR, stored=False)
        raise errors.ServiceUnavailable("the audit trail cannot be written; nothing was done, try again",
                                        code="AUDIT_UNAVAILABLE") from exc
    _emit(event, logging.INFO, stored=True)
    return event


def _event_key(at: dt.datetime) -> str:
    """A create-only key that sorts by time, then by write order within this process; random across processes."""
    return f"{iso(at)}-{next(_SEQUENCE) % 10**12:012d}-{uuid.uuid4().hex[:12]}"


@contextlib.contextmanager
def audited(deps: AuditPorts, tenant_id: str, action: str, resource: str, *, actor: str | None = None,
            details: Mapping[str, Any] | None = None) -> Iterator[Outcome]:
    """Append the intent before the block (503, block not run, when it cannot), then the block's outcome."""
    outcome = Outcome(details=dict(details or {}))
    intent = record(deps, tenant_id, action, resource, outcome="attempted", status=0, actor=actor, details=details)
    try:
        yield outcome
    except Exception as exc:
        status = exc.status if isinstance(exc, errors.AppError) else 500
        code = exc.code if isinstance(exc, errors.AppError) else "INTERNAL"
        _record_outcome(deps, tenant_id, action, resource, "failure", status, actor,
                        {**outcome.details, "code": code, "intent": intent.event_id})
        raise
    _record_outcome(deps, tenant_id, action, resource, "success", outcome.status, actor,
                    {**outcome.details, "intent": intent.event_id})


def _record_outcome(deps: AuditPorts, tenant_id: str, action: str, resource: str, outcome: str, status: int,
                    actor: str | None, details: Mapping[str, Any]) -> None:
    try:
        record(deps, tenant_id, action, resource, outcome=outcome, status=status, actor=actor, details=details)
    except errors.ServiceUnavailable:
        # Done and its intent stored: the answer stands; the outcome went to the log stream (``record`` logs it).
        log.warning("the outcome of %s on %s was not stored", action, resource)


def first_use(deps: AuditPorts, collection: str, stored: Record, action: str, resource: str, *,
              details: Mapping[str, Any] | None = None) -> Record:
    """Flag ``stored`` as used and append ``action`` the first time ever; return the record as it now is."""
    if stored.data.get(FIRST_USED_FIELD):
        return stored
    used_at = iso(deps.clock.now())

    def flag(data: dict[str, Any]) -> dict[str, Any] | None:
        return None if data.get(FIRST_USED_FIELD) else {**data, FIRST_USED_FIELD: used_at}

    try:
        flipped = update_record(deps.metadata, collection, stored.tenant_id, stored.key, flag)
    except errors.NotFound:
        return stored  # deleted meanwhile: nothing left to use
    if flipped is None:
        return stored  # another request flipped it, and appends the record
    try:
        record(deps, stored.tenant_id, action, resource, details=details)
    except errors.ServiceUnavailable:
        with contextlib.suppress(errors.AppError):  # put the flag back, so the next use records the first one
            update_record(deps.metadata, collection, stored.tenant_id, stored.key,
                          lambda data: ({k: v for k, v in data.items() if k != FIRST_USED_FIELD}
                                        if data.get(FIRST_USED_FIELD) == used_at else None))
        raise
    return flipped


def log_refusal(action: str, status: int, *, code: str, method: str, path: str, tenant_id: str = "",
                details: Mapping[str, Any] | None = None) -> None:
    """Log a refused authentication, authorisation or rate limit: to the audit log stream only, never the store."""
    if action not in REFUSALS:
        raise ValueError(f"{action} is not a refusal")
    origin = _ORIGIN.get() or _NO_ORIGIN
    # Refused before any service runs, so no injected clock is at hand: the line's own time is the event's.
    event = AuditEvent(tenant_id=tenant_id, actor=tenant_id, action=action, resource=path[:MAX_CLIENT_CHARS],
                       outcome="refused", status=status, request_id=origin.request_id, client=origin.client,
                       at=dt.datetime.now(dt.UTC),
                       details=safe_details({**(details or {}), "code": code, "method": method}))
    _emit(event, logging.WARNING, stored=False)


def _emit(event: AuditEvent, level: int, *, stored: bool) -> None:
    data = event.to_data()
    log.log(level, "audit %s %s %s by %s: %s %s", data["action"], data["resource"], data["outcome"], data["actor"],
            data["status"], "" if stored else "(not stored)",
            extra={"fields": {"audit": True, "audit_stored": stored, "audit_event": data}})
