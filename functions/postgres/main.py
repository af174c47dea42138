"""Function `postgres`: a tenant's saved Postgres connections, their tables, and read-only SQL over them."""

from __future__ import annotations

from typing import Any

import flask

from common import audit, bodies, bootstrap, errors, scratch
from common.http import Router, int_arg, json_body
from common.ports import SecretPorts
from common.services.postgres import connections, frames, query, tables
from common.uploads import receive_multipart
from common.web import tenant_of

router = Router("postgres")

CREATE_FIELDS = {"table", "rows"}
WRITE_FIELDS = {"mode", "rows"}


@router.route("/api/v1/postgres/connections", methods=["POST"], body_fields=connections.FIELDS)
def save_connection(request: flask.Request):
    tenant, body = tenant_of(request), json_body(request)
    if body.get("name") is None:
        raise errors.BadRequest("the field 'name' is required", code="MISSING_FIELD")
    name = connections.check_name(body["name"])
    params = connections.parse_params({key: value for key, value in body.items() if key != "name"})
    pg = bootstrap.context()
    with audit.audited(pg, tenant.user_id, "postgres_connection.save", f"postgres_connection/{name}",
                       details={"name": name}) as saved:
        record, created = connections.save(pg, tenant, name, params)
        saved.status, saved.details["created"] = (201 if created else 200), created
    return connections.view(record), 201 if created else 200


@router.route("/api/v1/postgres/connections", methods=["GET"])
def list_connections(request: flask.Request):
    tenant = tenant_of(request)
    return {"items": [connections.view(record) for record in connections.list_connections(bootstrap.context(), tenant)]}


@router.route("/api/v1/postgres/connections/<name>", methods=["GET"])
def get_connection(request: flask.Request, name: str):
    return connections.view(connections.get(bootstrap.context(), tenant_of(request), name))


@router.route("/api/v1/postgres/connections/<name>", methods=["DELETE"])
def delete_connection(request: flask.Request, name: str):
    tenant, pg = tenant_of(request), bootstrap.context()
    with audit.audited(pg, tenant.user_id, "postgres_connection.delete", f"postgres_connection/{name}",
                       details={"name": name}):
        connections.delete(pg, tenant, name)
    return {"deleted": True, "name": name}


@router.route("/api/v1/postgres/connections/<name>/test", methods=["POST"])
def check_connection(request: flask.Request, name: str):
    tenant, pg = tenant_of(request), bootstrap.context()
    with audit.audited(pg, tenant.user_id, "postgres_connection.test", f"postgres_connection/{name}",
                       details={"name": name}):
        return connections.check_saved(pg, tenant, name)


@router.route("/api/v1/postgres/<name>/tables", methods=["GET"])
def list_tables(request: flask.Request, name: str):
    return tables.list_tables(bootstrap.context(), tenant_of(request), name)


@router.route("/api/v1/postgres/<name>/tables/<path:table>", methods=["GET"])
def read_table(request: flask.Request, name: str, table: str):
    tenant, pg = tenant_of(request, spend="sql"), bootstrap.context()
    limit = int_arg(request, "limit", tables.DEFAULT_PAGE_ROWS, minimum=1, maximum=pg.settings.pg_max_rows)
    offset = int_arg(request, "offset", 0, minimum=0, maximum=2**62)
    return tables.read_rows(pg, tenant, name, table, limit=limit, offset=offset)


@router.route("/api/v1/postgres/<name>/tables", methods=["POST"], body_fields=CREATE_FIELDS)
def create_table(request: flask.Request, name: str):
    tenant, pg = tenant_of(request), bootstrap.context()
    connections.check_name(name)
    with scratch.directory("pg-rows-") as workdir:
        fields, frame = _rows_of(request, pg, workdir, CREATE_FIELDS)
        if fields.get("table") is None:
            raise errors.BadRequest("the field 'table' is required", code="MISSING_FIELD")
        return tables.create_table(pg, tenant, name, fields["table"], frame), 201


@router.route("/api/v1/postgres/<name>/tables/<path:table>", methods=["PUT"], body_fields=WRITE_FIELDS)
def write_table(request: flask.Request, name: str, table: str):
    tenant, pg = tenant_of(request), bootstrap.context()
    connections.check_name(name)
    with scratch.directory("pg-rows-") as workdir:
        fields, frame = _rows_of(request, pg, workdir, WRITE_FIELDS)
        if fields.get("mode") is None:
            raise errors.BadRequest(f"the field 'mode' is required: one of {', '.join(tables.WRITE_MODES)}",
                                    code="MISSING_FIELD")
        return tables.write_rows(pg, tenant, name, table, frame, fields["mode"])


@router.route("/api/v1/postgres/<name>/tables/<path:table>", methods=["DELETE"])
def drop_table(request: flask.Request, name: str, table: str):
    tables.drop_table(bootstrap.context(), tenant_of(request), name, table)
    return {"deleted": True, "connection": name, "table": table}


@router.route("/api/v1/postgres/<name>/query", methods=["POST"], body_fields=("sql", "limit"))
def run_query(request: flask.Request, name: str):
    tenant, body = tenant_of(request, spend="sql"), json_body(request)
    return query.run_query(bootstrap.context(), tenant, name, body.get("sql"), body.get("limit"))


def _rows_of(request: flask.Request, pg: SecretPorts, workdir: str,
             allowed: set[str]) -> tuple[dict[str, Any], Any]:
    """Read the rows to write: JSON ``{..., rows}`` (its fields checked by the route), or a multipart ``file``
    (CSV, Excel, Parquet, JSON)."""
    if request.mimetype == "multipart/form-data":
        form, files = receive_multipart(request, workdir, max_file_bytes=pg.settings.max_upload_bytes, max_files=1,
                                        file_fields=("file",))
        bodies.refuse_unknown_fields(form, (allowed - {"rows"}) | {"sheet"}, "the form")
        if not files:
            raise errors.BadRequest("the form field 'file' is required", code="MISSING_FIELD")
        upload = files[0]
        return form, frames.frame_from_upload(upload.path, upload.filename, pg.settings, workdir,
                                              form.get("sheet") or None)
    body = json_body(request)
    return body, frames.frame_from_rows(body.get("rows"))


def postgres(request: flask.Request) -> flask.Response:
    """Entry point (functions-framework target `postgres`)."""
    return router(request)
