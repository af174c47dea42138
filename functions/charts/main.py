"""Function `charts`: serves chart content behind signed URLs (the signature is the permission)."""

from __future__ import annotations

import flask

from common.http import Router
from common.web import pipeline_deps

router = Router("charts")


@router.route("/api/v1/charts/<chart_id>/<content>", methods=["GET"])
def content(request: flask.Request, chart_id: str, content: str):
    served = pipeline_deps().charts.open_signed(request.path, request.args)
    return flask.Response(served.body, mimetype=served.content_type, headers=served.headers)


def charts(request: flask.Request) -> flask.Response:
    """Entry point (functions-framework target `charts`)."""
    return router(request)
