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
from common.services import query_jobs, sessions
from common.services.pipeline import answer_cache
from common.services.pipeline.domain_data import check_domain
from common.services.pipeline.request import QuestionRequest
from common.services.pipeline.stages import STAGES, StageOutcome

log = logging.getLogger("convoinsight.pipeline")

FAN_IN = ("visualize", "analyze")
# The event of a finished question's log record; Terraform's log-based metrics (modules/metrics) count it.
FINISHED_EVENT = "question_finished"


def submit(deps: Any, tenant: Tenant, request: QuestionRequest) -> Any:
    """Create the job for a question and enqueue its first stage (or answer it from the cache)."""
    check_domain(deps, tenant, request.domain, request.datasets, has_pg=bool(request.pg_tokens))
    query_id = query_jobs.new_query_id()
    key = answer_cache.answer_key(deps, tenant, request)
    # Postgres data has no version to key on: a question that reads it is never answered from the cache.
    cached = None if request.pg_tokens else answer_cache.cached_answer(deps, key)
    sealed = {"api_key": deps.encryptor.encrypt(request.api_key)} if request.api_key and not cached else None
    record = query_jobs.create_job(deps.metadata, tenant.user_id, query_id=query_id, session_id=request.session_id,
                                   domain=request.domain, prompt=request.prompt,
                                   request={**request.stored(), "answer_key": key}, now=deps.clock.now(),
                                   secrets=sealed)
    if cached:
        return _answer_from_cache(deps, tenant, query_id, cached)
    try:
        _enqueue(deps, tenant, query_id, "plan")
    except errors.AppError as exc:
        _log_finished(tenant, query_jobs.finish_job(
            deps.metadata, tenant.user_id, query_id, "failed", now=deps.clock.now(),
            error={"code": exc.code, "message": "the question could not be queued"}))
        raise
    return record


def cancel(deps: Any, tenant: Tenant, query_id: str) -> Any:
    """Ask a question to stop: a queued one ends at once (and is logged as finished here), a running one at
    its next check (and is logged by the stage that sees it)."""
    now = deps.clock.now()
    record = query_jobs.request_cancel(deps.metadata, tenant.user_id, query_id, now=now)
    if record.data["status"] == "cancelled" and record.data.get("finished") == now.isoformat():
        _log_finished(tenant, record)  # this call ended it: another call's cancel has another time
    return record


def _answer_from_cache(deps: Any, tenant: Tenant, query_id: str, cached: dict[str, Any]) -> Any:
    now = deps.clock.now()
    answered = query_jobs.update_job(deps.metadata, tenant.user_id, query_id,
                                     lambda data: {**data, **cached, "answer": {**cached["answer"], "cached": True}})
    _record_turns(deps, tenant, query_id, answered.data, now)
    final = query_jobs.finish_job(deps.metadata, tenant.user_id, query_id, "succeeded", now=now)
    _log_finished(tenant, final)
    return final


def _record_turns(deps: Any, tenant: Tenant, query_id: str, data: dict[str, Any], now: Any) -> None:
    answer = {**data["answer"], "usage": _usage_summary(data["usage"])}
    sessions.record_turns(deps.metadata, tenant.user_id, session_id=data["session_id"], domain=data["domain"],
                          query_id=query_id, prompt=data["prompt"], answer=answer, now=now)


def _enqueue(deps: Any, tenant: Tenant, query_id: str, stage: str) -> None:
    from common.tasks import Task

    deps.tasks.enqueue(Task(name=f"{query_id}-{stage}", path=f"/tasks/{stage}",
                            payload={"tenant": tenant.user_id, "query_id": query_id, "stage": stage}))


def run_stage(deps: Any, payload: dict[str, Any], *, last_attempt: bool) -> dict[str, Any]:
    """Run the stage a task names, once; say what happened."""
    tenant, query_id, stage = _task_fields(payload)
    claimed = query_jobs.claim_stage(deps.metadata, tenant.user_id, query_id, stage, now=deps.clock.now(),
                                     lease_seconds=deps.settings.stage_lease_seconds)
    if claimed is None:
        _complete_answered(deps, tenant, query_id)
        return {"stage": stage, "ran": False}  # a duplicate delivery, a finished or a cancelled job
    try:
        outcome = STAGES[stage](deps, tenant, claimed.data)
    except errors.ServiceUnavailable:
        if not last_attempt:
            query_jobs.release_stage(deps.metadata, tenant.user_id, query_id, stage)
            raise
        _fail(deps, tenant, query_id, errors.ServiceUnavailable("a backend stayed unavailable"))
    except errors.AppError as exc:
        _fail(deps, tenant, query_id, exc)
    except Exception:
        log.exception("stage %s of %s failed", stage, query_id)
        if not last_attempt:
            query_jobs.release_stage(deps.metadata, tenant.user_id, query_id, stage)
            raise
        _fail(deps, tenant, query_id, errors.AppError("internal error"))
    else:
        _store(deps, tenant, query_id, stage, outcome)
    return {"stage": stage, "ran": True}


def _task_fields(payload: dict[str, Any]) -> tuple[Tenant, str, str]:
    tenant, query_id, stage = payload.get("tenant"), payload.get("query_id"), payload.get("stage")
    if not all(isinstance(value, str) and value for value in (tenant, query_id, stage)) or stage not in STAGES:
        raise errors.BadRequest("a task needs tenant, query_id and a known stage")
    return Tenant(tenant), query_id, stage


def _fail(deps: Any, tenant: Tenant, query_id: str, exc: errors.AppError) -> None:
    status = "cancelled" if exc.code == "CANCELLED" else "failed"
    error = None if status == "cancelled" else {"code": exc.code, "message": exc.message, "status": exc.status}
    _log_finished(tenant, query_jobs.finish_job(deps.metadata, tenant.user_id, query_id, status,
                                                now=deps.clock.now(), error=error, usage=getattr(exc, "calls", [])))


def _store(deps: Any, tenant: Tenant, query_id: str, stage: str, outcome: StageOutcome) -> None:
    now = deps.clock.now()
    outputs = outcome.outputs if outcome.answer is None else {**outcome.outputs, "answer": outcome.answer}
    record = query_jobs.finish_stage(deps.metadata, tenant.user_id, query_id, stage, outputs, now=now,
                                     usage=outcome.calls, skip=outcome.skip)
    if record is None:
        return  # cancelled or taken over meanwhile: whoever holds the job now decides
    if outcome.answer is not None:
        _complete(deps, tenant, query_id, record.data, now)
        return
    for next_stage in outcome.next_stages:
        if next_stage == "compile" and not _fan_in_complete(record.data):
            continue  # the other parallel stage is still running; it enqueues compile when it ends
        _enqueue(deps, tenant, query_id, next_stage)


def _complete(deps: Any, tenant: Tenant, query_id: str, answered: dict[str, Any], now: Any) -> None:
    """Finish a job whose answer is stored. History and answer cache are written first, so whoever sees
    "succeeded" (the original synchronous /query, then the frontend's session list; the same question again)
    finds them; every step is idempotent, so a delivery after a crash in between finishes the job (see
    ``_complete_answered``)."""
    _record_turns(deps, tenant, query_id, answered, now)
    if not answered["request"].get("pg_tokens"):
        answer_cache.remember_answer(deps, answered["request"]["answer_key"], {
            "answer": answered["answer"], "plan": answered.get("plan", {}),
            "plan_explainer": answered.get("plan_explainer", "")})
    _log_finished(tenant, query_jobs.finish_job(deps.metadata, tenant.user_id, query_id, "succeeded", now=now))


def _complete_answered(deps: Any, tenant: Tenant, query_id: str) -> None:
    """A redelivered stage of a job that holds its answer but never finished: finish it now."""
    try:
        data = query_jobs.get_job(deps.metadata, tenant.user_id, query_id).data
    except errors.NotFound:
        return
    if data["status"] not in query_jobs.TERMINAL and "answer" in data:
        _complete(deps, tenant, query_id, data, deps.clock.now())


def _fan_in_complete(data: dict[str, Any]) -> bool:
    return all(data["stages"][stage]["state"] in {"done", "skipped"} for stage in FAN_IN)


def _log_finished(tenant: Tenant, final: Any) -> None:
    """Log one structured record per question that ended here: what log-based metrics count and sum."""
    if final is None:
        return  # another delivery ended it, and logged it
    data = final.data
    elapsed = dt.datetime.fromisoformat(data["finished"]) - dt.datetime.fromisoformat(data["created"])
    fields = {"event": FINISHED_EVENT, "query_id": data["query_id"], "tenant": tenant.namespace,
              "status": data["status"], **_usage_summary(data["usage"]),
              "models": sorted({call["model"] for call in data["usage"]["calls"] if call.get("model")}),
              "duration_ms": round(elapsed.total_seconds() * 1000),
              "cached": bool(data.get("answer", {}).get("cached")), "error_code": (data.get("error") or {}).get("code")}
    log.info("question %s %s: %d calls, %d prompt + %d completion tokens, %.6f USD", data["query_id"],
             data["status"], fields["calls"], fields["prompt_tokens"], fields["completion_tokens"], fields["cost_usd"],
             extra={"fields": fields})


def _usage_summary(usage: dict[str, Any]) -> dict[str, Any]:
    return {"calls": len([call for call in usage["calls"] if call.get("error") != "skipped"]),
            "prompt_tokens": usage["prompt_tokens"], "completion_tokens": usage["completion_tokens"],
            "cost_usd": usage["cost_usd"]}
