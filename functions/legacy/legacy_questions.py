"""The original API's question routes: synchronous ``POST /query``, cancel, speech-to-text, sessions and chart
files.

``POST /query`` submits the same job as ``POST /api/v1/queries`` and waits for it (the original frontend
never polls), then answers in the original shape with its error codes. Chart files are served from signed
paths that never expire, because that frontend stores chart URLs and reloads them much later.
"""

from __future__ import annotations

import time
from typing import Any

import flask

from common import bootstrap, errors, scratch
from common.http import Router, int_arg, json_body
from common.services import sessions as session_history
from common.services.llm_config.active import active_choice
from common.services.pipeline import runner, views
from common.services.pipeline.request import parse_question
from common.web import receive_clip, tenant_of

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
    tenant, deps = _tenant(request, body, spend="query"), bootstrap.context()
    started = time.monotonic()
    question = parse_question(body, deps.settings, legacy=True,
                              **active_choice(deps.metadata, tenant))
    job = runner.submit(deps, tenant, question)
    final = views.wait_for_end(deps, tenant, job.query_id, timeout=deps.settings.query_wait_seconds)
    if not final.ended:
        return {"detail": f"the answer is taking too long; follow it at /api/v1/queries/{final.query_id}",
                "code": "TIMEOUT", "query_id": final.query_id}, 504
    return views.legacy_answer(deps, tenant, final, time.monotonic() - started)


def suggest(request: flask.Request):
    from common.services.pipeline.suggest import suggest_questions

    body = json_body(request)
    tenant, deps = _tenant(request, body, spend="query"), bootstrap.context()
    question = parse_question({"domain": "general", **body}, deps.settings, legacy=True, needs_prompt=False,
                              **active_choice(deps.metadata, tenant))
    return {"suggestions": suggest_questions(deps, tenant, question)["suggestions"]}


def speech_to_text(request: flask.Request):
    from common.services import speech

    deps = bootstrap.context()
    with scratch.directory("speech-") as workdir:
        fields, clip = receive_clip(request, workdir, deps.settings.stt_max_bytes)
        tenant = _tenant(request, fields, spend="query")
        # The original's default language: the frontend sends "id" anyway.
        transcript = speech.transcribe(deps, tenant, speech.parse_request(clip, fields, default_language="id"))
    return {key: transcript[key] for key in ("transcript", "language", "provider", "model")}


def cancel(request: flask.Request):
    body = json_body(request, required=False)
    tenant, deps = _tenant(request, body), bootstrap.context()
    query_id, session_id = body.get("query_id"), body.get("session_id") or request.args.get("session_id")
    for field, value in (("query_id", query_id), ("session_id", session_id)):
        if value is not None and not isinstance(value, str):
            raise errors.BadRequest(f"'{field}' must be a string")
    if query_id:
        job = runner.cancel(deps, tenant, query_id)
    else:  # the original cancelled by session: stop that session's running question, if one runs
        job = runner.cancel_session(deps, tenant, session_id) if session_id else None
    if job is None:
        return {"cancelled": False, "detail": "nothing is running"}
    return {"cancelled": job.status == "cancelled" or job.cancel_requested, "query_id": job.query_id,
            "session_id": job.session_id}


def list_sessions(request: flask.Request):
    tenant, deps = _tenant(request), bootstrap.context()
    items = []
    for record in session_history.list_sessions(deps.metadata, tenant,
                                                limit=int_arg(request, "limit", 20, minimum=1, maximum=200)):
        items.append({"session_id": record.key, "updated_at": str(record.updated_at),
                      "created_at": str(record.created_at), "last_visual_signed_url": "",
                      "last_visual_kind": record.data.get("last_chart_kind", ""),
                      "last_plan": record.data.get("last_plan", "")})
    return {"items": items}


def history(request: flask.Request, session_id: str):
    tenant, deps = _tenant(request), bootstrap.context()
    record = session_history.get_session(deps.metadata, tenant, session_id)
    turns = session_history.history(deps.metadata, tenant, session_id)
    return {"session_id": session_id,
            "history": [{"role": t["role"], "content": t["content"], "ts": t["ts"]} for t in turns],
            "last_visual_signed_url": "", "last_visual_kind": record.data.get("last_chart_kind", ""),
            "last_plan": record.data.get("last_plan", "")}


def export_pdf(request: flask.Request, session_id: str):
    from common.services.session_export import export_pdf as render_pdf

    tenant, deps = _tenant(request), bootstrap.context()
    pdf = render_pdf(deps, tenant, session_id)
    return flask.Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="chat_session_{session_id}.pdf"'})


def chart_file(request: flask.Request, namespace: str, filename: str):
    body = views.legacy_chart_html(bootstrap.context(), request.path, request.args, namespace, filename)
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
