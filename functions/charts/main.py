"""Function `charts`: a tenant's stored charts (list, read, signed URL, delete), and the content behind those URLs.

The content route reads no identity: its signature is the permission. Every other route is the caller's own
charts only; another tenant's chart is 404, never 403, so ids reveal nothing.
"""

from __future__ import annotations

import datetime as dt

import flask

from common import bootstrap, errors, names
from common.charts.store import CONTENT_TYPES, MAX_URL_TTL_SECONDS
from common.http import Router, int_arg
from common.web import tenant_of

router = Router("charts")

# Below a minute a URL may expire before the browser has fetched it.
MIN_URL_TTL_SECONDS = 60
_MAX_SESSION_ID = 512


@router.route("/api/v1/charts", methods=["GET"])
def list_charts(request: flask.Request):
    tenant = tenant_of(request)
    session_id = request.args.get("session_id")
    if session_id is not None and not 0 < len(session_id) <= _MAX_SESSION_ID:
        raise errors.BadRequest(f"session_id must be 1 to {_MAX_SESSION_ID} characters")
    domain = request.args.get("domain")
    domain = None if domain is None else names.domain_name(domain)
    limit = int_arg(request, "limit", 100, minimum=1, maximum=500)
    charts = bootstrap.context().charts.list(tenant, session_id=session_id, domain=domain, limit=limit)
    return {"items": [chart.view() for chart in charts]}


@router.route("/api/v1/charts/<chart_id>", methods=["GET"])
def get_chart(request: flask.Request, chart_id: str):
    tenant = tenant_of(request)
    store = bootstrap.context().charts
    chart = store.get(tenant, chart_id)
    return {**chart.view(), "spec": store.spec(tenant, chart_id)}


@router.route("/api/v1/charts/<chart_id>/url", methods=["GET"])
def chart_url(request: flask.Request, chart_id: str):
    tenant = tenant_of(request)
    fmt = request.args.get("format", "html")
    if fmt not in CONTENT_TYPES:
        raise errors.BadRequest(f"format must be one of {', '.join(CONTENT_TYPES)}, not {fmt!r}")
    deps = bootstrap.context()
    ttl = int_arg(request, "ttl", deps.settings.chart_url_ttl_seconds, minimum=MIN_URL_TTL_SECONDS,
                  maximum=MAX_URL_TTL_SECONDS)
    # The expiry is read before signing, so it is never later than the one inside the URL.
    expires_at = deps.clock.now() + dt.timedelta(seconds=ttl)
    url = deps.charts.url(tenant, chart_id, fmt, ttl)
    return {"chart_id": chart_id, "format": fmt, "url": url, "ttl_seconds": ttl,
            "expires_at": expires_at.replace(microsecond=0).isoformat()}


@router.route("/api/v1/charts/<chart_id>", methods=["DELETE"])
def delete_chart(request: flask.Request, chart_id: str):
    tenant = tenant_of(request)
    bootstrap.context().charts.delete(tenant, chart_id)
    return {"deleted": True, "chart_id": chart_id}


@router.route("/api/v1/charts/<chart_id>/<content>", methods=["GET"])
def content(request: flask.Request, chart_id: str, content: str):
    served = bootstrap.context().charts.open_signed(request.path, request.args)
    # content_type, not mimetype: the type already names its charset, which werkzeug would append again.
    return flask.Response(served.body, content_type=served.content_type, headers=served.headers)


def charts(request: flask.Request) -> flask.Response:
    """Entry point (functions-framework target `charts`)."""
    return router(request)
