"""Function `queries`: ask a question (202 + a job), follow it (status, Server-Sent Events), cancel it, and
download its whole result table (CSV, XLSX, Parquet)."""

from __future__ import annotations

import flask

from common import bootstrap
from common.analysis.export_formats import download_format
from common.downloads import send_result
from common.http import Router, json_body
from common.services import query_jobs, result_download, stalled_jobs
from common.services.llm_config.active import active_choice
from common.services.pipeline import events as event_stream
from common.services.pipeline import runner, views
from common.services.pipeline.request import QUESTION_FIELDS, parse_question
from common.web import tenant_of

router = Router("queries")


@router.route("/api/v1/queries", methods=["POST"], body_fields=QUESTION_FIELDS)
def submit(request: flask.Request):
    tenant = tenant_of(request, spend="query")
    deps = bootstrap.context()
    question = parse_question(json_body(request), deps.settings,
                              **active_choice(deps.metadata, tenant))
    job = runner.submit(deps, tenant, question)
    query_id = job.query_id
    return {"query_id": query_id, "session_id": job.session_id, "status": job.status,
            "status_url": f"/api/v1/queries/{query_id}", "events_url": f"/api/v1/queries/{query_id}/events"}, 202


@router.route("/api/v1/queries/<query_id>", methods=["GET"])
def status(request: flask.Request, query_id: str):
    tenant = tenant_of(request)
    deps = bootstrap.context()
    return views.job_view(deps, tenant, stalled_jobs.read_job(deps, tenant, query_id))


@router.route("/api/v1/queries/<query_id>", methods=["DELETE"])
def cancel(request: flask.Request, query_id: str):
    tenant = tenant_of(request)
    deps = bootstrap.context()
    job = runner.cancel(deps, tenant, query_id)
    return {"query_id": query_id, "status": job.status, "cancel_requested": job.cancel_requested}


@router.route("/api/v1/queries/<query_id>/events", methods=["GET"])
def events(request: flask.Request, query_id: str):
    tenant = tenant_of(request)
    deps = bootstrap.context()
    query_jobs.get_job(deps.metadata, tenant, query_id)  # 404 before the stream starts
    last_event_id = request.headers.get("Last-Event-ID") or request.args.get("last_event_id")
    sent = event_stream.stream(deps, tenant, query_id, last_event_id=last_event_id,
                               seconds=deps.settings.events_stream_seconds)
    return flask.Response(sent, mimetype="text/event-stream",
                          headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.route("/api/v1/queries/<query_id>/result", methods=["GET"])
def result(request: flask.Request, query_id: str):
    tenant = tenant_of(request, spend="sql")  # the SQL runs again: a data-reading request like any other
    fmt = download_format(request.args.get("format"))
    deps = bootstrap.context()
    return send_result(deps.settings.result_download_concurrency,
                       lambda: result_download.question_result(deps, tenant, query_id, fmt))


def queries(request: flask.Request) -> flask.Response:
    """Entry point (functions-framework target `queries`)."""
    return router(request)
