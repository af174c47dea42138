"""Submit a question, and run one delivered stage task: claim, run, store, enqueue what comes next.

Error policy: a stage that fails for a reason another try cannot fix (bad SQL after repairs, an LLM that
refused or kept failing after its own retries, a 4xx) fails the job with that reason. A transient failure
of our own backends gives the stage back and answers 5xx, so the queue retries it, until its last attempt,
which fails the job instead of leaving it running forever.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from common import errors
from common.auth import Tenant
from common.ports import QuestionPorts
from common.services import query_jobs, sessions
from common.services.pipeline import answer_cache
from common.services.pipeline.agent_call import AgentFailed
from common.services.pipeline.answers import completed_answer
from common.services.pipeline.domain_data import check_domain
from common.services.pipeline.job import Answer, Plan, QueryJob
from common.services.pipeline.request import QuestionRequest
from common.services.pipeline.stages import FAN_OUT, STAGES, StageOutcome

log = logging.getLogger("convoinsight.pipeline")

# The event of a finished question's log record; Terraform's log-based metrics (modules/metrics) count it.
FINISHED_EVENT = "question_finished"


def submit(deps: QuestionPorts, tenant: Tenant, request: QuestionRequest) -> QueryJob:
    """Create the job for a question and enqueue its first stage (or answer it from the cache)."""
    check_domain(deps, tenant, request.domain, request.datasets, has_pg=bool(request.pg_tokens))
    if request.continues_session:
        _check_session_exists(deps, tenant, request.session_id)
    query_id = query_jobs.new_query_id()
    key = answer_cache.answer_key(deps, tenant, request)
    # Postgres data has no version to key on: a question that reads it is never answered from the cache.
    cached = None if request.pg_tokens else answer_cache.cached_answer(deps, key)
    sealed = {"api_key": deps.encryptor.encrypt(request.api_key)} if request.api_key and not cached else None
    job = query_jobs.create_job(deps.metadata, tenant, query_id=query_id, session_id=request.session_id,
                                domain=request.domain, prompt=request.prompt, request=request.stored(answer_key=key),
                                now=deps.clock.now(), secrets=sealed)
    if cached:
        return _answer_from_cache(deps, tenant, query_id, cached)
    try:
        _enqueue(deps, tenant, query_id, "plan")
    except errors.AppError as exc:
        _log_finished(tenant, query_jobs.finish_job(
            deps.metadata, tenant, query_id, "failed", now=deps.clock.now(),
            error={"code": exc.code, "message": "the question could not be queued"}))
        raise
    return job


def _check_session_exists(deps: QuestionPorts, tenant: Tenant, session_id: str) -> None:
    """404 unless the session exists: it has a summary, or its first question is still being answered."""
    try:
        sessions.get_session(deps.metadata, tenant, session_id)
    except errors.NotFound:
        if not query_jobs.session_jobs(deps.metadata, tenant, session_id, limit=1):
            raise errors.NotFound(f"session {session_id!r} not found: omit session_id to start a new conversation",
                                  code="SESSION_NOT_FOUND") from None


def cancel(deps: QuestionPorts, tenant: Tenant, query_id: str) -> QueryJob:
    """Ask a question to stop. One waiting in the queue (no stage running) ends at once, is logged as finished
    here, and its queued stage tasks are deleted (best effort: a delivery that slips through finds the job
    ended). One with a stage running ends at that stage's next check, which logs it."""
    now = deps.clock.now()
    job = query_jobs.request_cancel(deps.metadata, tenant, query_id, now=now)
    if job.status == "cancelled" and job.finished == now.isoformat():  # this call ended it
        _log_finished(tenant, job)
        for stage, state in job.stages.items():
            if state.state == "cancelled":
                deps.tasks.delete(task_name(query_id, stage))
    return job


def cancel_session(deps: QuestionPorts, tenant: Tenant, session_id: str) -> QueryJob | None:
    """Cancel the session's newest question that has not ended, if there is one."""
    running = [job for job in query_jobs.session_jobs(deps.metadata, tenant, session_id) if not job.ended]
    return cancel(deps, tenant, running[-1].query_id) if running else None


def task_name(query_id: str, stage: str) -> str:
    """The name of a stage's task: one per stage of a job, so the queue refuses a second enqueue of it."""
    return f"{query_id}-{stage}"


def _answer_from_cache(deps: QuestionPorts, tenant: Tenant, query_id: str, cached: dict[str, Any]) -> QueryJob:
    now = deps.clock.now()

    def answered(job: QueryJob) -> QueryJob:
        job.answer = Answer.from_data({**cached["answer"], "cached": True})
        job.plan = Plan(**cached["plan"]) if cached.get("plan") else None
        job.plan_explainer = cached.get("plan_explainer", "")
        return job

    _record_turns(deps, tenant, query_jobs.update_job(deps.metadata, tenant, query_id, answered), now)
    final = query_jobs.finish_job(deps.metadata, tenant, query_id, "succeeded", now=now)
    _log_finished(tenant, final)
    return final


def _record_turns(deps: QuestionPorts, tenant: Tenant, job: QueryJob, now: dt.datetime) -> None:
    answer = {**job.answer.to_data(), "usage": job.usage.summary()}
    sessions.record_turns(deps.metadata, tenant, session_id=job.session_id, domain=job.domain,
                          query_id=job.query_id, prompt=job.prompt, answer=answer, now=now)


def _enqueue(deps: QuestionPorts, tenant: Tenant, query_id: str, stage: str) -> None:
    from common.tasks import Task

    deps.tasks.enqueue(Task(name=task_name(query_id, stage), path=f"/tasks/{stage}",
                            payload={"tenant": tenant.user_id, "query_id": query_id, "stage": stage}))


def run_stage(deps: QuestionPorts, payload: dict[str, Any], *, last_attempt: bool) -> dict[str, Any]:
    """Run the stage a task names, once; say what happened."""
    tenant, query_id, stage = _task_fields(payload)
    try:
        return _run_stage(deps, tenant, query_id, stage, last_attempt=last_attempt)
    except errors.NotFound as exc:
        if exc.code != "QUERY_NOT_FOUND":
            raise
        return {"stage": stage, "ran": False}  # the job was deleted (with its session): nothing left to do


def _run_stage(deps: QuestionPorts, tenant: Tenant, query_id: str, stage: str, *,
               last_attempt: bool) -> dict[str, Any]:
    claimed = query_jobs.claim_stage(deps.metadata, tenant, query_id, stage, now=deps.clock.now(),
                                     lease_seconds=deps.settings.stage_lease_seconds)
    if claimed is None:
        _complete_answered(deps, tenant, query_id)
        return {"stage": stage, "ran": False}  # a duplicate delivery, a finished or a cancelled job
    try:
        outcome = STAGES[stage](deps, tenant, claimed)
    except errors.AppError as exc:
        cause, calls = (exc.cause, exc.calls) if isinstance(exc, AgentFailed) else (exc, [])
        if isinstance(cause, errors.ServiceUnavailable):
            if not last_attempt:  # give the stage back: the queue's retry runs it again
                query_jobs.release_stage(deps.metadata, tenant, query_id, stage)
                if cause is exc:
                    raise
                raise cause from exc
            cause = errors.ServiceUnavailable("a backend stayed unavailable")
        _fail(deps, tenant, query_id, cause, calls)
    except Exception:
        log.exception("stage %s of %s failed", stage, query_id)
        if not last_attempt:
            query_jobs.release_stage(deps.metadata, tenant, query_id, stage)
            raise
        _fail(deps, tenant, query_id, errors.AppError("internal error"), [])
    else:
        try:
            _store(deps, tenant, query_id, stage, outcome)
        except errors.ServiceUnavailable:
            if not last_attempt:  # the job could not be written: the retry runs the stage again at once, and
                _release_quietly(deps, tenant, query_id, stage)  # reuses its model replies (reply_memo)
            else:  # no retry will come: end the job if the store takes that write (else it ends as stalled)
                _fail_quietly(deps, tenant, query_id)
            raise
    return {"stage": stage, "ran": True}


def _release_quietly(deps: QuestionPorts, tenant: Tenant, query_id: str, stage: str) -> None:
    """Give the stage back if it is still ours (a store that failed may have committed: then this does nothing);
    when even that fails, its lease runs out and a later delivery takes it over."""
    try:
        query_jobs.release_stage(deps.metadata, tenant, query_id, stage)
    except errors.AppError as exc:
        log.warning("could not give back stage %s of %s: %s", stage, query_id, exc.message)


def _fail_quietly(deps: QuestionPorts, tenant: Tenant, query_id: str) -> None:
    try:
        _fail(deps, tenant, query_id, errors.ServiceUnavailable("a backend stayed unavailable"), [])
    except errors.AppError as exc:
        log.warning("could not end question %s after its last attempt: %s", query_id, exc.message)


def _task_fields(payload: dict[str, Any]) -> tuple[Tenant, str, str]:
    tenant, query_id, stage = payload.get("tenant"), payload.get("query_id"), payload.get("stage")
    if not all(isinstance(value, str) and value for value in (tenant, query_id, stage)) or stage not in STAGES:
        raise errors.BadRequest("a task needs tenant, query_id and a known stage")
    return Tenant(tenant), query_id, stage


def _fail(deps: QuestionPorts, tenant: Tenant, query_id: str, exc: errors.AppError,
          calls: list[dict[str, Any]]) -> None:
    status = "cancelled" if exc.code == "CANCELLED" else "failed"
    error = None if status == "cancelled" else {"code": exc.code, "message": exc.message, "status": exc.status}
    _log_finished(tenant, query_jobs.finish_job(deps.metadata, tenant, query_id, status,
                                                now=deps.clock.now(), error=error, usage=calls))


def _store(deps: QuestionPorts, tenant: Tenant, query_id: str, stage: str, outcome: StageOutcome) -> None:
    now = deps.clock.now()
    job = query_jobs.finish_stage(deps.metadata, tenant, query_id, stage, outcome.apply, now=now,
                                  usage=outcome.calls, skip=outcome.skip)
    if job is None:
        return  # cancelled or taken over meanwhile: whoever holds the job now decides
    if job.answer is not None and _fan_in_complete(job):
        _complete(deps, tenant, job, now)  # the answer, and the chart beside it if one was drawn
        return
    for next_stage in outcome.next_stages:
        _enqueue(deps, tenant, query_id, next_stage)


def _complete(deps: QuestionPorts, tenant: Tenant, job: QueryJob, now: dt.datetime) -> None:
    """Finish a job whose answer is stored and whose chart, if any, is drawn. The answer is completed first
    (chart, prompt versions), then history and answer cache are written, so whoever sees "succeeded" (the
    original synchronous /query, then the frontend's session list; the same question again) finds them; every
    step is idempotent, so a delivery after a crash in between finishes the job (see ``_complete_answered``).
    Of two side-by-side stages ending at once, both may get here; finishing is done once."""
    answer = completed_answer(deps, tenant, job)
    if answer != job.answer:
        def completed(current: QueryJob) -> QueryJob | None:
            if current.ended:
                return None
            current.answer = answer
            return current

        job = query_jobs.update_job(deps.metadata, tenant, job.query_id, completed) or job
    _record_turns(deps, tenant, job, now)
    if not job.request.pg_tokens:
        answer_cache.remember_answer(deps, job.request.answer_key, {
            "answer": job.answer.to_data(), "plan": vars(job.plan) if job.plan else {},
            "plan_explainer": job.plan_explainer})
    _log_finished(tenant, query_jobs.finish_job(deps.metadata, tenant, job.query_id, "succeeded", now=now))


def _complete_answered(deps: QuestionPorts, tenant: Tenant, query_id: str) -> None:
    """A redelivered stage of a job that holds its answer but never finished: finish it now."""
    try:
        job = query_jobs.get_job(deps.metadata, tenant, query_id)
    except errors.NotFound:
        return
    if not job.ended and job.answer is not None and _fan_in_complete(job):
        _complete(deps, tenant, job, deps.clock.now())


def _fan_in_complete(job: QueryJob) -> bool:
    """Whether the answer and the chart beside it have both ended (a canned answer skips both)."""
    return all(job.stages[stage].state in {"done", "skipped"} for stage in FAN_OUT if stage in job.stages)


def _log_finished(tenant: Tenant, final: QueryJob | None) -> None:
    """Log one structured record per question that ended here: what log-based metrics count and sum."""
    if final is None:
        return  # another delivery ended it, and logged it
    elapsed = dt.datetime.fromisoformat(final.finished) - dt.datetime.fromisoformat(final.created)
    usage = final.usage.summary()
    fields = {"event": FINISHED_EVENT, "query_id": final.query_id, "tenant": tenant.namespace,
              "status": final.status, **usage,
              "models": sorted({call["model"] for call in final.usage.calls if call.get("model")}),
              "duration_ms": round(elapsed.total_seconds() * 1000),
              "cached": bool(final.answer and final.answer.cached), "error_code": (final.error or {}).get("code")}
    log.info("question %s %s: %d calls, %d prompt + %d completion tokens, %.6f USD", final.query_id,
             final.status, usage["calls"], usage["prompt_tokens"], usage["completion_tokens"], usage["cost_usd"],
             extra={"fields": fields})
