"""The original API's question routes: synchronous ``POST /query``, cancel, speech-to-text, sessions and chart
files.

``POST /query`` submits the same job as ``POST /api/v1/queries`` and waits for it (the original frontend
never polls), then answers in the original shape with its error codes. Chart files are served from signed
paths that never expire, because that frontend stores chart URLs and reloads them much later.
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

import flask

from common import errors
from common.http import Router, int_arg, json_body
from common.services import query_jobs
from common.services import sessions as session_history
from common.services.llm_config.active import active_choice
from common.services.pipeline import runner, views
from common.services.pipeline.request import parse_question
from common.web import pipeline_deps, tenant_of

QUERY_V1 = {"Deprecation": "true", "Link": '</api/v1/queries>; rel="successor-version"'}
SPEECH_V1 = {"Deprecation": "true", "Link": '</api/v1/llm/transcriptions>; rel="successor-version"'}
SESSIONS_V1 = {"Deprecation": "true", "Link": '</api/v1/sessions>; rel="successor-version"'}


def _tenant(request: flask.Request, body: dict[str, Any] | None = None, *, spend: str | None = None) -> Any:
    claimed = request.args.get("userId") or (body or {}).get("userId")
    if claimed is not None and not isinstance(claimed, str):
        raise errors.BadRequest("userId must be a string")
    return tenant_of(request, legacy_user_id=claimed or None, spend=spend)


def ask(request: flask.Request):
    body = json_body(request)
    tenant, deps = _tenant(request, body, spend="query"), pipeline_deps()
    started = time.monotonic()
    question = parse_question(body, deps.settings, legacy=True,
                              **active_choice(deps.metadata, tenant.user_id))
    record = runner.submit(deps, tenant, question)
    final = views.wait_for_end(deps, tenant, record.data["query_id"], timeout=deps.settings.query_wait_seconds)
    return views.legacy_answer(deps, tenant, final, time.monotonic() - started)


def suggest(request: flask.Request):
    from common.services.pipeline.suggest import suggest_questions

    body = json_body(request)
    tenant, deps = _tenant(request, body, spend="query"), pipeline_deps()
    question = parse_question({"domain": "general", **body}, deps.settings, legacy=True, needs_prompt=False,
                              **active_choice(deps.metadata, tenant.user_id))
    return {"suggestions": suggest_questions(deps, tenant, question)["suggestions"]}


def speech_to_text(request: flask.Request):
    from common.services import speech

    deps = pipeline_deps()
    with tempfile.TemporaryDirectory(prefix="speech-") as workdir:
        fields, clip = speech.receive_clip(request, workdir, deps.settings)
        tenant = _tenant(request, fields, spend="query")
        # The original's default language: the frontend sends "id" anyway.
        transcript = speech.transcribe(deps, tenant, speech.parse_request(clip, fields, default_language="id"))
    return {key: transcript[key] for key in ("transcript", "language", "provider", "model")}


def cancel(request: flask.Request):
    body = json_body(request, required=False)
    tenant, deps = _tenant(request, body), pipeline_deps()
    query_id, session_id = body.get("query_id"), body.get("session_id") or request.args.get("session_id")
    if not query_id and session_id:
        # The original cancelled by session: stop that session's running question, if one runs.
        running = [r for r in deps.metadata.list(query_jobs.COLLECTION, tenant.user_id, parent=session_id)
                   if r.data["status"] not in query_jobs.TERMINAL]
        query_id = running[-1].key if running else None
    if not query_id:
        return {"cancelled": False, "detail": "nothing is running"}
    record = runner.cancel(deps, tenant, query_id)
    return {"cancelled": record.data["status"] == "cancelled" or record.data["cancel_requested"],
            "query_id": query_id, "session_id": record.data["session_id"]}


def list_sessions(request: flask.Request):
    tenant, deps = _tenant(request), pipeline_deps()
    items = []
    for record in session_history.list_sessions(deps.metadata, tenant.user_id,
                                                limit=int_arg(request, "limit", 20, minimum=1, maximum=200)):
        items.append({"session_id": record.key, "updated_at": str(record.updated_at),
                      "created_at": str(record.created_at), "last_visual_signed_url": "",
                      "last_visual_kind": record.data.get("last_chart_kind", ""),
                      "last_plan": record.data.get("last_plan", "")})
    return {"items": items}


def history(request: flask.Request, session_id: str):
    tenant, deps = _tenant(request), pipeline_deps()
    record = session_history.get_session(deps.metadata, tenant.user_id, session_id)
    turns = session_history.history(deps.metadata, tenant.user_id, session_id)
    return {"session_id": session_id,
            "history": [{"role": t["role"], "content": t["content"], "ts": t["ts"]} for t in turns],
            "last_visual_signed_url": "", "last_visual_kind": record.data.get("last_chart_kind", ""),
            "last_plan": record.data.get("last_plan", "")}


def export_pdf(request: flask.Request, session_id: str):
    from common.services.session_export import export_pdf as render_pdf

    tenant, deps = _tenant(request), pipeline_deps()
    pdf = render_pdf(deps.metadata, deps.blobs, tenant, session_id, now=deps.clock.now())
    return flask.Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="chat_session_{session_id}.pdf"'})


def chart_file(request: flask.Request, namespace: str, filename: str):
    deps = pipeline_deps()
    chart_id, dot, extension = filename.partition(".")
    if extension != "html" or not dot:
        raise errors.NotFound("no such chart")
    from common.signing import HmacUrlSigner

    HmacUrlSigner.from_setting(deps.settings.url_signing_secret).verify(
        request.path, request.args, now=deps.clock.now().timestamp())
    try:
        body = deps.blobs.get(f"tenants/{namespace}/charts/{chart_id}/chart.html")
    except errors.NotFound:
        raise errors.NotFound("no such chart") from None
    return flask.Response(body, mimetype="text/html", headers={"X-Content-Type-Options": "nosniff"})


def gone(request: flask.Request, rest: str = ""):
    raise errors.Gone("chart storage moved: list charts with GET /api/v1/sessions/{id} and fetch their URLs",
                      code="GONE")


def register(router: Router) -> None:
    """Add the question routes to the legacy function's router."""
    router.route("/query", methods=["POST"], headers=QUERY_V1)(ask)
    router.route("/query/cancel", methods=["POST"], headers=QUERY_V1)(cancel)
    router.route("/speech-to-text", methods=["POST"], headers=SPEECH_V1)(speech_to_text)
    router.route("/suggest", methods=["POST"], headers=QUERY_V1)(suggest)
    router.route("/sessions", methods=["GET"], headers=SESSIONS_V1)(list_sessions)
    router.route("/sessions/<session_id>/history", methods=["GET"], headers=SESSIONS_V1)(history)
    router.route("/sessions/<session_id>/export/pdf", methods=["GET"], headers=SESSIONS_V1)(export_pdf)
    router.route("/charts/sb", methods=["GET", "DELETE"])(gone)
    router.route("/charts/sb/<path:rest>", methods=["GET", "DELETE"])(gone)
    router.route("/charts/<namespace>/<filename>", methods=["GET"])(chart_file)
