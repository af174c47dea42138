"""Query jobs: the state of one question as it moves through the pipeline's stages.

A job is one metadata record (collection ``queries``) that every stage moves with compare-and-set, so a
duplicated or retried Cloud Task cannot run a stage twice: a stage is *claimed* (pending -> running, with a
lease) before any LLM call, and a delivery that finds its stage claimed, done or the job finished does
nothing. A claim whose worker died is taken over once its lease has expired. Cancel is a flag on the job,
seen by the next claim (and by each stage before each LLM call); a job that has finished ignores it, so a
cancel never lingers to kill a later question.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable

from common import errors
from common.auth import Tenant
from common.metadata import MetadataStore, update_record
from common.services.pipeline.job import STAGES, TERMINAL, JobRequest, QueryJob, StageState

COLLECTION = "queries"
__all__ = ["COLLECTION", "STAGES", "TERMINAL", "QueryJob"]
_CAS_ATTEMPTS = 20


def new_query_id() -> str:
    """Return a fresh, URL-safe, unguessable query id."""
    return "q_" + secrets.token_urlsafe(12).replace("-", "x").replace("_", "y")


def create_job(metadata: MetadataStore, tenant: Tenant, *, query_id: str, session_id: str, domain: str,
               prompt: str, request: JobRequest, now: dt.datetime, secrets: dict[str, str] | None = None) -> QueryJob:
    """Store a new queued job; every stage starts pending. ``secrets`` (sealed) are dropped when it ends."""
    job = QueryJob(query_id=query_id, session_id=session_id, domain=domain, prompt=prompt, request=request,
                   created=now.isoformat(), secrets=secrets or None)
    record = metadata.put(COLLECTION, tenant.user_id, query_id, job.to_data(), parent=session_id,
                          expected_revision=None)
    return QueryJob.from_record(record)


def get_job(metadata: MetadataStore, tenant: Tenant, query_id: str) -> QueryJob:
    """Return the job, or a 404 naming it (another tenant's job is not found either)."""
    try:
        return QueryJob.from_record(metadata.get(COLLECTION, tenant.user_id, query_id))
    except errors.NotFound:
        raise errors.NotFound(f"query {query_id!r} not found", code="QUERY_NOT_FOUND") from None


def session_jobs(metadata: MetadataStore, tenant: Tenant, session_id: str, *,
                 limit: int | None = None) -> list[QueryJob]:
    """Return the session's jobs, oldest first (the first ``limit`` when given)."""
    return [QueryJob.from_record(record)
            for record in metadata.list(COLLECTION, tenant.user_id, parent=session_id, order_by="created_at",
                                        limit=limit)]


def delete_job(metadata: MetadataStore, tenant: Tenant, query_id: str) -> None:
    """Forget the job (a stage delivered after this finds nothing to do); a job already gone is no error."""
    try:
        metadata.delete(COLLECTION, tenant.user_id, query_id)
    except errors.NotFound:
        pass


def update_job(metadata: MetadataStore, tenant: Tenant, query_id: str,
               change: Callable[[QueryJob], QueryJob | None]) -> QueryJob | None:
    """Apply ``change`` to the job with compare-and-set (see ``update_record``); a missing job is a 404.

    ``change`` gets a fresh copy each try and returns the job to store, or None to leave it (then so does this).
    """

    def change_data(data: dict) -> dict | None:
        changed = change(QueryJob.from_data(data))
        return None if changed is None else changed.to_data()

    try:
        record = update_record(metadata, COLLECTION, tenant.user_id, query_id, change_data, attempts=_CAS_ATTEMPTS)
    except errors.NotFound:
        raise errors.NotFound(f"query {query_id!r} not found", code="QUERY_NOT_FOUND") from None
    return None if record is None else QueryJob.from_record(record)


def claim_stage(metadata: MetadataStore, tenant: Tenant, query_id: str, stage: str, *, now: dt.datetime,
                lease_seconds: float) -> QueryJob | None:
    """Mark ``stage`` running for this caller; None when there is nothing to do (or the job was cancelled)."""
    claim = secrets.token_hex(8)

    def change(job: QueryJob) -> QueryJob | None:
        if job.ended:
            return None
        if job.cancel_requested:
            return _cancelled(job, now)
        state = job.stages[stage]
        lease_over = (state.lease_until or "") < now.isoformat()
        if state.state != "pending" and not (state.state == "running" and lease_over):
            return None
        job.stages[stage] = StageState(state="running", claim=claim, started_at=now.isoformat(),
                                       lease_until=(now + dt.timedelta(seconds=lease_seconds)).isoformat())
        job.status = "running"
        return job

    job = update_job(metadata, tenant, query_id, change)
    if job is None or job.stages[stage].claim != claim:
        return None
    return job


def finish_stage(metadata: MetadataStore, tenant: Tenant, query_id: str, stage: str,
                 outputs: Callable[[QueryJob], None], *, now: dt.datetime, usage: list[dict] = (),
                 skip: list[str] = ()) -> QueryJob | None:
    """Mark ``stage`` done, store its outputs (``outputs`` sets them on the job) and LLM usage, and mark
    ``skip`` stages as not needed.

    Returns None when the job ended (or the stage was taken over) meanwhile.
    """

    def change(job: QueryJob) -> QueryJob | None:
        if job.ended or job.stages[stage].state != "running":
            return None
        job.stages[stage].state, job.stages[stage].finished_at = "done", now.isoformat()
        outputs(job)
        skip_stages(job, list(skip))
        job.usage.add(list(usage))
        return job

    return update_job(metadata, tenant, query_id, change)


def skip_stages(job: QueryJob, stages: list[str]) -> None:
    """Mark stages the plan does not need as skipped (inside a ``change`` function)."""
    for stage in stages:
        if job.stages[stage].state == "pending":
            job.stages[stage].state = "skipped"


def finish_job(metadata: MetadataStore, tenant: Tenant, query_id: str, status: str, *, now: dt.datetime,
               error: dict | None = None, usage: list[dict] = ()) -> QueryJob | None:
    """Move the job to a terminal status (once); running stages end with it."""
    if status not in TERMINAL:
        raise ValueError(f"not a terminal status: {status}")

    def change(job: QueryJob) -> QueryJob | None:
        if job.ended:
            return None
        job.status, job.finished = status, now.isoformat()
        job.secrets = None  # a request's key is held only while its question runs
        if error:
            job.error = error
        for state in job.stages.values():
            if state.state == "running":
                state.state, state.finished_at = ("failed" if status == "failed" else status), now.isoformat()
            elif state.state == "pending":
                state.state = "skipped" if status == "succeeded" else status
        job.usage.add(list(usage))
        return job

    return update_job(metadata, tenant, query_id, change)


def release_stage(metadata: MetadataStore, tenant: Tenant, query_id: str, stage: str) -> None:
    """Give a claimed stage back (after a transient failure) so the task's retry can claim it at once."""

    def change(job: QueryJob) -> QueryJob | None:
        if job.ended or job.stages[stage].state != "running":
            return None
        job.stages[stage] = StageState()
        return job

    update_job(metadata, tenant, query_id, change)


def request_cancel(metadata: MetadataStore, tenant: Tenant, query_id: str, *, now: dt.datetime) -> QueryJob:
    """Ask a job to stop: one with no stage running (queued, or between stages) is cancelled at once, one with
    a stage running at that stage's next check."""

    def change(job: QueryJob) -> QueryJob | None:
        if job.ended or job.cancel_requested:
            return None
        if not any(state.state == "running" for state in job.stages.values()):
            return _cancelled(job, now)
        job.cancel_requested = True
        return job

    return update_job(metadata, tenant, query_id, change) or get_job(metadata, tenant, query_id)


def is_cancel_requested(metadata: MetadataStore, tenant: Tenant, query_id: str) -> bool:
    """Say whether the job should stop before its next LLM call."""
    job = get_job(metadata, tenant, query_id)
    return job.cancel_requested or job.status == "cancelled"


def _cancelled(job: QueryJob, now: dt.datetime) -> QueryJob:
    job.status, job.finished, job.secrets = "cancelled", now.isoformat(), None
    for state in job.stages.values():
        if state.state in {"pending", "running"}:
            state.state = "cancelled"
    return job
