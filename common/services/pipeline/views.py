"""A query job as the v1 API shows it, and as the original API's synchronous ``POST /query`` answered."""

from __future__ import annotations

import time
from typing import Any

from common.auth import Tenant
from common.services import query_jobs

LEGACY_CHART_EXPIRY = 4102444800  # 2100-01-01: the original frontend stores chart URLs and reloads them for good


def job_view(deps: Any, tenant: Tenant, record: Any) -> dict[str, Any]:
    """The job's state, each stage's state and timings, usage, and the answer or error when it ended."""
    data = record.data
    view = {
        "query_id": data["query_id"], "session_id": data["session_id"], "domain": data["domain"],
        "prompt": data["prompt"], "status": data["status"], "created_at": record.created_at.isoformat(),
        "updated_at": record.updated_at.isoformat(),
        "stages": {name: {key: value for key, value in state.items() if key in {"state", "started_at",
                                                                                "finished_at"}}
                   for name, state in data["stages"].items()},
        "usage": {"calls": len(data["usage"]["calls"]), "prompt_tokens": data["usage"]["prompt_tokens"],
                  "completion_tokens": data["usage"]["completion_tokens"], "cost_usd": data["usage"]["cost_usd"],
                  "by_call": data["usage"]["calls"]},
        "plan_explainer": data.get("plan_explainer", ""),
    }
    if data["status"] == "succeeded":
        answer = _fresh_chart_urls(deps, tenant, data["answer"])
        models = sorted({call["model"] for call in data["usage"]["calls"] if call.get("ok")})
        usage = {key: view["usage"][key] for key in ("calls", "prompt_tokens", "completion_tokens", "cost_usd")}
        view["answer"] = {**answer, "usage": usage, "provenance": {**answer["provenance"], "models": models}}
    if data["status"] == "failed":
        view["error"] = data.get("error")
    return view


def _fresh_chart_urls(deps: Any, tenant: Tenant, answer: dict[str, Any]) -> dict[str, Any]:
    chart = answer.get("chart")
    if not chart:
        return answer
    # Signed URLs expire; sign them anew for every read of the answer.
    chart = {**chart, "html_url": deps.charts.url(tenant, chart["chart_id"], "html"),
             "png_url": deps.charts.url(tenant, chart["chart_id"], "png")}
    return {**answer, "chart": chart}


def wait_for_end(deps: Any, tenant: Tenant, query_id: str, *, timeout: float, poll: float = 0.1) -> Any:
    """Poll the job until it ends or ``timeout`` passes; return its last record."""
    deadline = time.monotonic() + timeout
    while True:
        record = query_jobs.get_job(deps.metadata, tenant.user_id, query_id)
        if record.data["status"] in query_jobs.TERMINAL or time.monotonic() >= deadline:
            return record
        time.sleep(poll)
        poll = min(poll * 1.5, 1.0)


def legacy_chart_url(deps: Any, tenant: Tenant, chart_id: str) -> str:
    """A chart path for the original frontend: signed, and valid for as long as it keeps it."""
    from common.signing import HmacUrlSigner

    signer = HmacUrlSigner.from_setting(deps.settings.url_signing_secret)
    return signer.sign(f"/charts/{tenant.namespace}/{chart_id}.html", expires_at=LEGACY_CHART_EXPIRY)


def legacy_answer(deps: Any, tenant: Tenant, record: Any, elapsed: float) -> tuple[dict[str, Any], int]:
    """The original ``POST /query`` body and status for a finished (or still running) job."""
    data = record.data
    if data["status"] == "cancelled":
        return {"detail": "Cancelled", "code": "CANCELLED"}, 409
    if data["status"] == "failed":
        error = data.get("error") or {}
        return {"detail": error.get("message", "the question failed"), "code": error.get("code", "FAILED")}, \
            error.get("status", 502) if 400 <= error.get("status", 502) < 600 else 502
    if data["status"] != "succeeded":
        return {"detail": "the answer is taking too long; follow it at /api/v1/queries/" + data["query_id"],
                "code": "TIMEOUT", "query_id": data["query_id"]}, 504
    answer, plan = data["answer"], data.get("plan", {})
    chart = answer.get("chart")
    return {
        "session_id": data["session_id"], "response": answer["answer_html"],
        "diagram_signed_url": None, "diagram_public_url": "",
        "chart_url": legacy_chart_url(deps, tenant, chart["chart_id"]) if chart else "",
        "diagram_kind": ("tables" if chart and chart["kind"] == "table" else "charts") if chart else "",
        "diagram_gs_uri": "", "need_manipulator": bool(plan.get("need_manipulator")),
        "need_visualizer": bool(plan.get("need_visualizer")), "need_analyzer": bool(plan.get("need_analyzer")),
        "plan_explainer": answer.get("plan_explainer", ""), "execution_time": round(elapsed, 3),
        "scope": answer.get("scope", "data_question"), "llm_model_used": data["request"]["model_id"],
        "sql": answer.get("sql"), "unverified_numbers": answer.get("unverified_numbers", []),
        "query_id": data["query_id"],
    }, 200
