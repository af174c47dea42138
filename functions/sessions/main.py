"""Function `sessions`: a tenant's conversations and their history."""

from __future__ import annotations

import flask

from common import audit, bootstrap
from common.http import Router, int_arg
from common.services import sessions as session_history
from common.services.session_delete import delete_session as delete_session_and_questions
from common.web import tenant_of

router = Router("sessions")


@router.route("/api/v1/sessions", methods=["GET"])
def list_sessions(request: flask.Request):
    tenant = tenant_of(request)
    records = session_history.list_sessions(bootstrap.context().metadata, tenant,
                                     limit=int_arg(request, "limit", 50, minimum=1, maximum=500))
    return {"items": [{**record.data, "created_at": record.created_at.isoformat(),
                       "updated_at": record.updated_at.isoformat()} for record in records]}


@router.route("/api/v1/sessions/<session_id>", methods=["GET"])
def get_session(request: flask.Request, session_id: str):
    tenant = tenant_of(request)
    metadata = bootstrap.context().metadata
    record = session_history.get_session(metadata, tenant, session_id)
    return {**record.data, "created_at": record.created_at.isoformat(), "updated_at": record.updated_at.isoformat(),
            "history": session_history.history(metadata, tenant, session_id)}


@router.route("/api/v1/sessions/<session_id>/export", methods=["POST"])
def export(request: flask.Request, session_id: str):
    from common.services.session_export import export_pdf

    tenant = tenant_of(request)
    deps = bootstrap.context()
    pdf = export_pdf(deps, tenant, session_id)
    return flask.Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="chat_session_{session_id}.pdf"'})


@router.route("/api/v1/sessions/<session_id>", methods=["DELETE"])
def delete_session(request: flask.Request, session_id: str):
    tenant, ctx = tenant_of(request), bootstrap.context()
    with audit.audited(ctx, tenant.user_id, "session.delete", f"session/{session_id}",
                       details={"session_id": session_id}):
        removed = delete_session_and_questions(ctx, tenant, session_id)
    return {"deleted": True, "session_id": session_id, **removed}


def sessions(request: flask.Request) -> flask.Response:
    """Entry point (functions-framework target `sessions`)."""
    return router(request)
