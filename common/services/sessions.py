"""Sessions and their history: one record per turn, owned by the tenant.

A turn is written once under a key derived from its question (``<session>/<query_id>/<n>-<role>``) with create-only
semantics, so a retried compile stage cannot write a second turn, and concurrent questions in one session
never overwrite each other (the original kept history in one document, read-modified-written, and lost
turns). The session record is a summary for listings; the turns are the history.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from common import errors
from common.auth import Tenant
from common.metadata import MetadataStore, Record

SESSIONS_COLLECTION = "sessions"
TURNS_COLLECTION = "turns"
MAX_TITLE_CHARS = 120


_ROLE_ORDER = {"user": "0", "assistant": "1"}


def _turn_key(session_id: str, query_id: str, role: str) -> str:
    # Both turns of a question share a timestamp; the key breaks the tie so the question comes first.
    return f"{session_id}/{query_id}/{_ROLE_ORDER[role]}-{role}"


def record_turns(metadata: MetadataStore, tenant: Tenant, *, session_id: str, domain: str, query_id: str,
                 prompt: str, answer: dict[str, Any], now: dt.datetime) -> None:
    """Append the question and its answer to the session (once, however often this is called)."""
    turns = (("user", {"role": "user", "content": prompt}),
             ("assistant", {"role": "assistant", "content": answer.get("answer_markdown", ""), "answer": answer}))
    for role, data in turns:
        data.update(query_id=query_id, session_id=session_id, ts=now.timestamp())
        try:
            metadata.put(TURNS_COLLECTION, tenant.user_id, _turn_key(session_id, query_id, role), data,
                         parent=session_id, expected_revision=None)
        except errors.Conflict:
            continue  # written by an earlier delivery of the same stage
    _touch_session(metadata, tenant, session_id, domain, prompt, query_id, answer)


def _touch_session(metadata: MetadataStore, tenant: Tenant, session_id: str, domain: str, prompt: str,
                   query_id: str, answer: dict[str, Any]) -> None:
    chart = answer.get("chart") or {}
    for _ in range(10):
        try:
            current = metadata.get(SESSIONS_COLLECTION, tenant.user_id, session_id)
            data, expected = dict(current.data), current.revision
        except errors.NotFound:
            data, expected = {"session_id": session_id, "domain": domain, "title": prompt[:MAX_TITLE_CHARS]}, None
        data.update(last_query_id=query_id, last_chart_kind=chart.get("kind", ""),
                    last_plan=answer.get("plan_explainer", ""))
        try:
            metadata.put(SESSIONS_COLLECTION, tenant.user_id, session_id, data, expected_revision=expected)
            return
        except errors.Conflict:
            continue
    raise errors.Conflict("the session kept changing; try again")


def list_sessions(metadata: MetadataStore, tenant: Tenant, *, limit: int = 50) -> list[Record]:
    """Return the tenant's sessions, most recently active first."""
    return metadata.list(SESSIONS_COLLECTION, tenant.user_id, order_by="-updated_at", limit=limit)


def get_session(metadata: MetadataStore, tenant: Tenant, session_id: str) -> Record:
    """Return a session's summary record, or 404 (also for another tenant's session)."""
    try:
        return metadata.get(SESSIONS_COLLECTION, tenant.user_id, session_id)
    except errors.NotFound:
        raise errors.NotFound(f"session {session_id!r} not found", code="SESSION_NOT_FOUND") from None


def history(metadata: MetadataStore, tenant: Tenant, session_id: str, *, last: int | None = None,
            first: int | None = None) -> list[dict]:
    """Return the session's turns in order (only the ``last`` or the ``first`` ones when given)."""
    turns = metadata.list(TURNS_COLLECTION, tenant.user_id, parent=session_id, order_by="created_at", limit=first)
    selected = turns[-last:] if last else turns
    return [turn.data for turn in selected]


def delete_session(metadata: MetadataStore, tenant: Tenant, session_id: str) -> int:
    """Remove a session and every turn of it; return how many turns went."""
    get_session(metadata, tenant, session_id)
    removed = 0
    for turn in metadata.list(TURNS_COLLECTION, tenant.user_id, parent=session_id):
        try:
            metadata.delete(TURNS_COLLECTION, tenant.user_id, turn.key)
            removed += 1
        except errors.NotFound:
            continue
    try:
        metadata.delete(SESSIONS_COLLECTION, tenant.user_id, session_id)
    except errors.NotFound:
        pass
    return removed
