"""The original API's ``/pg/save``, ``/pg/get`` and ``/pg/test``, in their original shapes (LEGACY_API.md §2.7).

The original frontend (FRONTEND_CONTRACT.md §5.4) reads a flag and ``error`` whatever the status: ``saved``
from /pg/save, ``ok`` from /pg/test (it shows ``"Connection failed: " + error`` itself, so ``error`` does not
start with those words), ``items`` from /pg/get, whose ``port`` and ``updated_at`` must be strings. Errors
keep those shapes, with real 4xx/5xx statuses. What is not repeated (§6 D5): a ``userId`` that is not the
authenticated caller, connections to any host at all (``PG_ALLOWED_HOSTS``), passwords pasted unescaped into
URLs, and driver internals in errors.

A connection saved here is the v1 connection of that name (``default`` when, as from the frontend, none is
sent), the one ``pg:*``, ``pg:table:`` and ``pg:query:`` tokens read. The original tested with libpq's
default sslmode (``prefer``: TLS when the server offers it, else plain text) and read with ``require``; here one
sslmode is stored and used for both, so a test that passes means the reads will connect too: ``prefer`` unless
the body names one, since the frontend never does and its users' databases may or may not offer TLS (v1 keeps
``require`` as its default; engines.py says what each mode protects against).
"""

from __future__ import annotations

import re
from typing import Any

import flask

from common import audit, bootstrap, errors
from common.http import Router, json_body
from common.services.postgres import connections
from common.web import tenant_of

PG_V1 = {"Deprecation": "true", "Link": '</api/v1/postgres/connections>; rel="successor-version"'}
SAVE_FIELDS = ("host", "port", "dbname", "user", "password")
TEST_FIELDS = ("host", "port", "dbname", "user")
DEFAULT_NAME = "default"
ORIGINAL_SSLMODE = connections.PREFER_SSLMODE  # libpq's default: the original's psycopg2.connect named none
# What the frontend puts before a /pg/test error itself; a message starting with it would say it twice.
_SHOWN_PREFIX = "connection failed: "


def _flagged(flag: str | None, *, shown_after_prefix: bool = False):
    """Build an error body in the original's shape: ``{flag: false, "error"}``, or ``{"error"}``."""

    def body(error: errors.AppError, request_id: str) -> dict:
        message = error.message
        if shown_after_prefix:
            message = re.sub(rf"^(the )?{_SHOWN_PREFIX}", "", message, flags=re.IGNORECASE)
        result = {flag: False, "error": message} if flag else {"error": message}
        if error.status >= 500:
            result["request_id"] = request_id
        return result

    return body


def _caller(request: flask.Request, user_id: Any, missing: str) -> Any:
    """The authenticated caller; the original required ``userId``, and it must be that caller."""
    if not isinstance(user_id, str) or not user_id.strip():
        raise errors.BadRequest(missing, code="MISSING_FIELD")
    return tenant_of(request, legacy_user_id=user_id)


def _params(body: dict[str, Any], required: tuple[str, ...], missing: str) -> connections.ConnectionParams:
    absent = [field for field in required if body.get(field) is None or body.get(field) == ""]
    if "password" in required and body.get("password") == "":
        absent.remove("password")  # a database user may have no password
    if absent:
        raise errors.BadRequest(f"{missing}: {', '.join(absent)}", code="MISSING_FIELD")
    return connections.parse_params({key: value for key, value in body.items() if key in connections.FIELDS
                                     and key != "name"}, default_sslmode=ORIGINAL_SSLMODE)


def save(request: flask.Request):
    body = json_body(request)
    tenant = _caller(request, body.get("userId"), "Missing one of required fields: userId")
    name = connections.check_name(body.get("name") or DEFAULT_NAME)
    params = _params(body, SAVE_FIELDS, "Missing one of required fields")
    pg = bootstrap.context()
    with audit.audited(pg, tenant.user_id, "postgres_connection.save", f"postgres_connection/{name}",
                       details={"name": name}):
        record, _ = connections.save(pg, tenant, name, params)
    return {"saved": True, "id": f"{tenant.user_id}_{record.key}"}


def list_saved(request: flask.Request):
    tenant = _caller(request, request.args.get("userId"), "Missing userId")
    pg = bootstrap.context()
    items = [{"id": f"{tenant.user_id}_{record.key}", "name": record.key, "host": record.data["host"],
              "port": str(record.data["port"]), "dbname": record.data["dbname"], "user": record.data["user"],
              "updated_at": str(record.updated_at)}
             for record in connections.list_connections(pg, tenant)]
    return {"items": items, "count": len(items)}


def check_connection(request: flask.Request):
    body = json_body(request)
    tenant = tenant_of(request, legacy_user_id=body["userId"] if isinstance(body.get("userId"), str) else None)
    params = _params(body, TEST_FIELDS, "Missing fields")
    ctx = bootstrap.context()
    # Unsaved parameters: the resource is the connection attempt itself, named by nothing stored.
    with audit.audited(ctx, tenant.user_id, "postgres_connection.test", "postgres_connection/(unsaved)"):
        connections.check_params(ctx.settings, params)
    return {"ok": True}


def register(router: Router) -> None:
    """Add the Postgres connection routes to the legacy function's router."""
    router.route("/pg/save", methods=["POST"], headers=PG_V1, error_body=_flagged("saved"))(save)
    router.route("/pg/get", methods=["GET"], headers=PG_V1, error_body=_flagged(None))(list_saved)
    router.route("/pg/test", methods=["POST"], headers=PG_V1,
                 error_body=_flagged("ok", shown_after_prefix=True))(check_connection)
