"""Function `health`: liveness, readiness of each configured backend, the v1 OpenAPI document, and the original
API's /health."""

from __future__ import annotations

import flask

from common import bootstrap
from common.http import Router, json_response

router = Router("health")


@router.route("/api/v1/health", methods=["GET"])
def status(request: flask.Request):
    settings = bootstrap.context().settings
    return {"status": "ok", "service": "convoinsight", "environment": settings.environment}


@router.route("/api/v1/health/live", methods=["GET"])
def live(request: flask.Request):
    return {"status": "alive"}


@router.route("/api/v1/health/ready", methods=["GET"])
def ready(request: flask.Request):
    # A checked backend whose breaker is open fails its ping at once (DEPENDENCY_UNAVAILABLE); once the breaker
    # is due, the ping is the probe that closes it. Every open breaker this instance knows is listed as well.
    context = bootstrap.context()
    checks, failed = {}, []
    for name, backend in context.backends().items():
        try:
            backend().ping()
            checks[name] = {"ok": True}
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; say which and why
            checks[name] = {"ok": False, "error": getattr(exc, "message", None) or type(exc).__name__}
            failed.append(name)
    body = {"status": "unavailable" if failed else "ready", "checks": checks, "failed": failed,
            "open_breakers": context.breakers.open_breakers(public=True)}
    return json_response(body, 503 if failed else 200)


@router.route("/api/v1/openapi.json", methods=["GET"])
def openapi_document(request: flask.Request):
    from common.openapi import load_openapi  # read on first request: a cold start does not parse the YAML

    return load_openapi()


@router.route("/health", methods=["GET"])
def legacy_health(request: flask.Request):
    # The original's shape, but its ts says its zone: ISO 8601 in UTC with "+00:00" (the original's was naive).
    return {"status": "healthy", "ts": bootstrap.context().clock.now().isoformat()}


@router.route("/", methods=["GET"])
def legacy_root(request: flask.Request):
    return {"ok": True, "service": "ConvoInsight BE", "health": "/health"}


def health(request: flask.Request) -> flask.Response:
    """Entry point (functions-framework target `health`)."""
    return router(request)
