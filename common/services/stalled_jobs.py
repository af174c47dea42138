"""Questions that stopped moving end as failed, so no one waits on a job that nothing will finish.

A job moves with every stage; when a stage's last delivery could not record its result (the store was down for
that write too), the queue drops the task and the job would stay "running" for ever. A job unchanged for
longer than every delivery of a stage can take (``stall_after``: each attempt holds a lease, plus one more)
is stalled: reading it (status, events, the original API's /query) ends it as failed with ``STALLED``, and the
cleanup function ends those nobody reads. Ending is compare-and-set, so a stage that does finish meanwhile
wins, and a stalled job ends once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging

from common import errors
from common.auth import Tenant
from common.config import Settings
from common.ports import DataPorts
from common.services import query_jobs
from common.services.pipeline.job import QueryJob

log = logging.getLogger("convoinsight.pipeline")

STALLED = {"code": "STALLED", "status": 503,
           "message": "the question stopped making progress (a step could not be run or recorded) and was ended; "
                      "ask it again"}


def stall_after(settings: Settings) -> dt.timedelta:
    """How long a job may stay unchanged before it is taken as stalled."""
    return dt.timedelta(seconds=settings.stage_lease_seconds * (settings.tasks_max_attempts + 1))


def end_if_stalled(deps: DataPorts, tenant: Tenant, job: QueryJob) -> QueryJob:
    """Return ``job``, ended as failed (STALLED) first when it has not moved for ``stall_after``."""
    now = deps.clock.now()
    if job.ended or job.updated_at is None or now - job.updated_at < stall_after(deps.settings):
        return job
    ended = query_jobs.finish_job(deps.metadata, tenant, job.query_id, "failed", now=now, error=dict(STALLED))
    if ended is not None:
        log.warning("question %s of %s had stalled since %s: ended", job.query_id, tenant.user_id,
                    job.updated_at.isoformat())
        return ended
    return query_jobs.get_job(deps.metadata, tenant, job.query_id)  # it moved or ended meanwhile


def read_job(deps: DataPorts, tenant: Tenant, query_id: str) -> QueryJob:
    """The question's job as its reader should see it (NotFound when it is not the tenant's)."""
    return end_if_stalled(deps, tenant, query_jobs.get_job(deps.metadata, tenant, query_id))


def end_stalled_jobs(deps: DataPorts, *, dry_run: bool = False) -> dict:
    """The cleanup function's step: end every stalled job; say how many."""
    cutoff = deps.clock.now() - stall_after(deps.settings)
    stalled = [(record.tenant_id, record.key) for record in deps.metadata.scan(query_jobs.COLLECTION)
               if record.data.get("status") not in query_jobs.TERMINAL and record.updated_at < cutoff]
    if not dry_run:
        for tenant_id, query_id in stalled:
            with contextlib.suppress(errors.NotFound):  # deleted meanwhile (its conversation was)
                read_job(deps, Tenant(tenant_id), query_id)
    return {"stalled_jobs": len(stalled), "dry_run": dry_run}
