"""Conversations kept no longer than SESSION_RETENTION_DAYS: the cleanup function deletes idle ones whole.

A conversation's questions, result tables, charts and history go together (``session_delete.purge_session``),
so nothing is left pointing at what was removed. Idle means its summary was last written before the cutoff;
a conversation that never got a summary (its only question failed or was cancelled) is judged by its newest
question. PDF exports are made on request and never stored, so none need expiring. Reads every session and
question record: a scheduled maintenance job, never a request path.
"""

from __future__ import annotations

import datetime as dt
import logging

from common.auth import Tenant
from common.ports import QuestionPorts
from common.services import query_jobs, session_delete, sessions

log = logging.getLogger("convoinsight.cleanup")


def expire_sessions(deps: QuestionPorts, now: dt.datetime, *, retention_days: int,
                    dry_run: bool = False) -> dict:
    """Delete the conversations idle for ``retention_days`` (none when it is 0); say which."""
    if retention_days <= 0:
        return {"expired_sessions": 0, "retention_days": 0, "dry_run": dry_run}
    cutoff = now - dt.timedelta(days=retention_days)
    last_active: dict[tuple[str, str], dt.datetime] = {}
    summarised: set[tuple[str, str]] = set()
    for record in deps.metadata.scan(sessions.SESSIONS_COLLECTION):
        summarised.add((record.tenant_id, record.key))
        last_active[(record.tenant_id, record.key)] = record.updated_at
    for record in deps.metadata.scan(query_jobs.COLLECTION):
        session = (record.tenant_id, record.parent)
        if record.parent and session not in summarised:
            last_active[session] = max(last_active.get(session, record.updated_at), record.updated_at)
    expired = sorted(session for session, active in last_active.items() if active < cutoff)
    if not dry_run:
        for tenant_id, session_id in expired:
            session_delete.purge_session(deps, Tenant(tenant_id), session_id)
    if expired:
        log.info("%s %d conversations idle for %d days", "would expire" if dry_run else "expired", len(expired),
                 retention_days)
    return {"expired_sessions": len(expired), "retention_days": retention_days, "dry_run": dry_run}
