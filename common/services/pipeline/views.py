"""A query job as the v1 API shows it, and as the original API's synchronous ``POST /query`` answered."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from common import errors
from common.analysis.answer import frontend_html
from common.auth import Tenant
from common.ports import QuestionPorts
from common.services import stalled_jobs
from common.services.pipeline.answers import chart_view
from common.services.pipeline.job import QueryJob
from common.storage import keys

log = logging.getLogger("convoinsight.pipeline")

LEGACY_CHART_EXPIRY = 4102444800  # 2100-01-01: the original frontend stores chart URLs and reloads them for good


def job_view(deps: QuestionPorts, tenant: Tenant, job: QueryJob) -> dict[str, Any]:
    """The job's state, each stage's state and timings, usage, and the answer or error when it ended."""
    usage = job.usage
    view = {
        "query_id": job.query_id, "session_id": job.session_id, "domain": job.domain, "prompt": job.prompt,
        "status": job.status, "created_at": job.created_at.isoformat(), "updated_at": job.updated_at.isoformat(),
        "stages": {name: {key: value for key, value in vars(state).items()
                          if key in {"state", "started_at", "finished_at"} and value is not None}
                   for name, state in job.stages.items()},
        "usage": {"calls": len(usage.calls), "prompt_tokens": usage.prompt_tokens,
                  "completion_tokens": usage.completion_tokens, "cost_usd": usage.cost_usd, "by_call": usage.calls},
        "plan_explainer": job.plan_explainer,
    }
    if job.status == "succeeded":
        answer = job.answer.to_data()
        if answer.get("chart"):
            answer["chart"] = chart_view(deps, tenant, answer["chart"])  # signed anew for every read
        models = sorted({call["model"] for call in usage.calls if call.get("ok")})
        summary = {key: view["usage"][key] for key in ("calls", "prompt_tokens", "completion_tokens", "cost_usd")}
        view["answer"] = {**answer, "usage": summary, "provenance": {**answer["provenance"], "models": models}}
    if job.status == "failed":
        view["error"] = job.error
    return view


def wait_for_end(deps: QuestionPorts, tenant: Tenant, query_id: str, *, timeout: float,
                 poll: float = 0.1) -> QueryJob:
    """Poll the job until it ends or ``timeout`` passes; return it as it last was."""
    deadline = time.monotonic() + timeout
    while True:
        job = stalled_jobs.read_job(deps, tenant, query_id)
        if job.ended or time.monotonic() >= deadline:
            return job
        time.sleep(poll)
        poll = min(poll * 1.5, 1.0)


def legacy_chart_url(deps: QuestionPorts, tenant: Tenant, chart_id: str) -> str:
    """A chart path for the original frontend: signed, and valid for as long as it keeps it; "" (the
    original's "no chart") when nothing can sign it, rather than failing an answer that is ready."""
    from common.signing import HmacUrlSigner

    try:
        signer = HmacUrlSigner.from_setting(deps.settings.url_signing_secret)
    except errors.ConfigurationError as exc:
        log.warning("the original /query answers without chart links: %s", exc.message)
        return ""
    return signer.sign(f"/charts/{tenant.namespace}/{chart_id}.html", expires_at=LEGACY_CHART_EXPIRY)


def legacy_chart_html(deps: QuestionPorts, path: str, args: Mapping[str, str], namespace: str,
                      filename: str) -> bytes:
    """The chart page behind a ``legacy_chart_url`` (its signature is the permission)."""
    from common.signing import HmacUrlSigner

    chart_id, dot, extension = filename.partition(".")
    if extension != "html" or not dot:
        raise errors.NotFound("no such chart")
    HmacUrlSigner.from_setting(deps.settings.url_signing_secret).verify(path, args, now=deps.clock.now().timestamp())
    try:
        return deps.blobs.get(keys.chart_key(namespace, chart_id, "chart.html"))
    except errors.NotFound:
        raise errors.NotFound("no such chart") from None


def legacy_answer(deps: QuestionPorts, tenant: Tenant, job: QueryJob, elapsed: float) -> dict[str, Any]:
    """The original ``POST /query`` body of a job that succeeded; a failed or cancelled one raises its error."""
    if job.status == "cancelled":
        raise errors.Conflict("Cancelled", code="CANCELLED")
    if job.status == "failed":
        error = job.error or {}
        raise errors.stored_error(error.get("status"), error.get("message", "the question failed"),
                                  error.get("code", "FAILED"))
    answer, plan = job.answer, job.plan
    chart = answer.chart
    return {
        "session_id": job.session_id, "response": frontend_html(answer.answer_html),
        "diagram_signed_url": None, "diagram_public_url": "",
        "chart_url": legacy_chart_url(deps, tenant, chart["chart_id"]) if chart else "",
        "diagram_kind": ("tables" if chart and chart["kind"] == "table" else "charts") if chart else "",
        "diagram_gs_uri": "", "need_manipulator": bool(plan and plan.need_manipulator),
        "need_visualizer": bool(plan and plan.need_visualizer), "need_analyzer": bool(plan and plan.need_analyzer),
        "plan_explainer": answer.plan_explainer, "execution_time": round(elapsed, 3),
        "scope": answer.scope, "llm_model_used": job.request.model_id,
        "sql": answer.sql, "unverified_numbers": answer.unverified_numbers, "query_id": job.query_id,
    }
