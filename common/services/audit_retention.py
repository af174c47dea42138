"""Audit records kept no longer than AUDIT_RETENTION_DAYS: the cleanup function deletes the older ones.

No route edits or deletes an audit record; this sweep is the only writer that removes any, and only by age.
The key of a record begins with its time (``common.audit.trail``), so its age is read from the key alone. Reads
every audit record across tenants: a scheduled maintenance job, never a request path.
"""

from __future__ import annotations

import datetime as dt
import logging

from common import errors
from common.audit.events import iso
from common.audit.trail import COLLECTION
from common.metadata import MetadataStore

log = logging.getLogger("convoinsight.cleanup")


def expire_audit_records(metadata: MetadataStore, now: dt.datetime, *, retention_days: int,
                         dry_run: bool = False) -> dict:
    """Delete the audit records older than ``retention_days`` (none when it is 0); say how many."""
    if retention_days <= 0:
        return {"expired_audit_records": 0, "retention_days": 0, "dry_run": dry_run}
    cutoff = iso(now - dt.timedelta(days=retention_days))
    expired = 0
    for record in metadata.scan(COLLECTION):
        if record.key >= cutoff:
            continue
        expired += 1
        if not dry_run:
            try:
                metadata.delete(COLLECTION, record.tenant_id, record.key)
            except errors.NotFound:
                expired -= 1  # another sweep got there first
    if expired:
        log.info("%s %d audit records older than %d days", "would expire" if dry_run else "expired", expired,
                 retention_days)
    return {"expired_audit_records": expired, "retention_days": retention_days, "dry_run": dry_run}
