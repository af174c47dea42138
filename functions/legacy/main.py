"""Function `legacy`: the original API's routes, same paths and response shapes, over the v1 services.

Every answer carries a ``Deprecation`` header and a ``Link`` to its v1 successor. The original's defects are
not kept: every route is scoped to the authenticated caller, names cannot traverse paths, and errors never
echo internals (see LEGACY_API.md §6).
"""

from __future__ import annotations

import re
from typing import Any

import flask
import legacy_llm  # beside this file: the provider-key, active-config and registry routes
import legacy_postgres  # beside this file: the /pg/* connection routes
import legacy_questions  # beside this file: the question, session and chart routes

from common import audit, bootstrap, errors, names, scratch
from common.http import Router, int_arg, json_body, legacy_detail_body
from common.services import dataset_reads
from common.services import datasets as dataset_writes
from common.uploads import receive_multipart, receive_raw_body
from common.web import send_export, send_stream, tenant_of

router = Router("legacy", error_body=legacy_detail_body)
legacy_questions.register(router)
legacy_llm.register(router)
legacy_postgres.register(router)

DATASETS_V1 = {"Deprecation": "true", "Link": '</api/v1/datasets>; rel="successor-version"'}
DOMAINS_V1 = {"Deprecation": "true", "Link": '</api/v1/domains>; rel="successor-version"'}
LEGACY_PREVIEW_ROWS = 50
SIGNED_FILE_TTL_SECONDS = 7 * 24 * 3600


def _caller(request: flask.Request, fields: dict | None = None, *, spend: str | None = None):
    """The authenticated caller; a ``userId`` in the query, form or JSON body must be that caller."""
    claimed = request.args.get("userId") or (fields or {}).get("userId")
    if claimed is not None and not isinstance(claimed, str):
        raise errors.BadRequest("userId must be a string")
    return tenant_of(request, legacy_user_id=claimed or None, spend=spend)


def _gs_uri(record: Any) -> str:
    settings = bootstrap.context().settings
    return f"gs://{settings.gcs_bucket}/{record.data['original_key']}" if settings.storage_backend == "gcs" else ""


def _upload_result(record: Any) -> dict:
    return {"filename": record.data["name"], "gs_uri": _gs_uri(record), "signed_url": "",
            "size_bytes": record.data["size_bytes"]}


def _list_item(record: Any, tenant: Any, sql_names: dict[str, str]) -> dict:
    data = record.data
    updated = record.updated_at.isoformat()
    return {"domain": data["domain"], "filename": data["name"], "gs_uri": _gs_uri(record),
            "size_bytes": data["size_bytes"], "size": data["size_bytes"], "updated": updated,
            "updated_at": updated, "created_at": record.created_at.isoformat(),
            "signed_url": _signed_csv_url(record, tenant), "kind": data["kind"],
            # Beyond the original's shape: the name SQL reads each table by (one per sheet of a workbook).
            "table_names": [sql_names.get(table["name"]) for table in data.get("tables", [])]}


def _signed_csv_url(record: Any, tenant: Any) -> str:
    """A link that downloads a table as CSV without credentials for a week (the frontend's KPI cards fetch it).

    Absolute: the page fetches it as it is, from its own origin, where a path alone would name the page's own
    files (its index.html) instead of this API's.
    """
    from common.signing import HmacUrlSigner

    settings, data = bootstrap.context().settings, record.data
    if data["kind"] != "table" or not settings.url_signing_secret:
        return ""
    path = f"/files/datasets/{tenant.user_id}/{data['domain']}/{data['name']}"
    expires = int(bootstrap.context().clock.now().timestamp()) + SIGNED_FILE_TTL_SECONDS
    # The path as the server will read it (decoded); the signer sends it percent-encoded.
    signed = HmacUrlSigner.from_setting(settings.url_signing_secret).sign(path, expires_at=expires)
    return (settings.public_base_url.rstrip("/") or _request_origin(flask.request, settings.auth_mode)) + signed


_PUBLIC_HOST = re.compile(r"(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")


def _request_origin(request: flask.Request, auth_mode: str) -> str:
    """The scheme and host the caller reached this API at ("" when the Host header is not a host name).

    Forwarding headers are read only with AUTH_MODE=gateway, where the functions answer the gateway alone, so
    their last value is the gateway's own (as werkzeug's ProxyFix reads one trusted proxy); elsewhere a caller
    could write them, and the request's own Host and scheme are used.
    """
    scheme, host = request.scheme, request.host
    if auth_mode == "gateway":
        forwarded_proto = request.headers.get("X-Forwarded-Proto", "").rpartition(",")[2].strip().lower()
        forwarded_host = request.headers.get("X-Forwarded-Host", "").rpartition(",")[2].strip()
        scheme = forwarded_proto if forwarded_proto in ("http", "https") else scheme
        host = forwarded_host or host
    return f"{scheme}://{host}" if _PUBLIC_HOST.fullmatch(host) else ""


def _upload(request: flask.Request, domain: str | None, *, raw_body_allowed: bool) -> list[dict]:
    ctx = bootstrap.context()
    settings = ctx.settings
    with scratch.directory("upload-") as workdir:
        if request.mimetype == "multipart/form-data" or not raw_body_allowed:
            form, files = receive_multipart(request, workdir, max_file_bytes=settings.max_upload_bytes,
                                            max_files=dataset_writes.MAX_FILES_PER_UPLOAD,
                                            file_fields=("file", "files", "files[]"))
        else:
            form, files = {}, [receive_raw_body(request, workdir, max_file_bytes=settings.max_upload_bytes)]
        tenant = _caller(request, form, spend="upload")
        if not (domain or form.get("domain")) or not files:
            raise errors.BadRequest("Missing 'domain' or 'file'", code="MISSING_FIELD")
        domain = names.domain_name(domain) if domain is not None else names.form_domain_name(form["domain"])
        records = dataset_writes.upload(ctx, tenant, domain, files)
    return [_upload_result(record) for record in records]


@router.route("/datasets/upload", methods=["POST"], headers=DATASETS_V1)
def upload_dataset(request: flask.Request):
    return _upload(request, None, raw_body_allowed=False)[0], 201


@router.route("/upload_datasets/<domain>", methods=["POST"], headers=DATASETS_V1)
def upload_datasets(request: flask.Request, domain: str):
    if request.mimetype != "multipart/form-data" and not request.content_length and not request.args.get("filename"):
        raise errors.BadRequest("No file provided", code="NO_FILE")
    return {"items": _upload(request, domain, raw_body_allowed=True)}, 201


def _listing(request: flask.Request, domain: str | None) -> dict:
    tenant = _caller(request)
    domain = names.domain_name(domain) if domain else None
    records = dataset_reads.list_records(bootstrap.context(), tenant, domain)
    sql_names = dataset_writes.sql_table_names(records)  # every domain listed is listed whole: names are right
    items = [_list_item(r, tenant, sql_names.get(r.data["domain"], {})) for r in records]
    return {"items": items, "datasets": items}


@router.route("/datasets", methods=["GET"], headers=DATASETS_V1)
def list_datasets(request: flask.Request):
    return _listing(request, request.args.get("domain") or None)


@router.route("/datasets/<domain>/all", methods=["GET"], headers=DATASETS_V1)
def list_domain_datasets(request: flask.Request, domain: str):
    return _listing(request, domain)


@router.route("/datasets/<domain>/all", methods=["DELETE"], headers=DATASETS_V1)
def delete_domain(request: flask.Request, domain: str):
    # 200 with nothing deleted for an unknown domain, as before: its frontend needs a 2xx (FRONTEND_CONTRACT D7).
    tenant, domain, ctx = _caller(request), names.domain_name(domain), bootstrap.context()
    with audit.audited(ctx, tenant.user_id, "domain.delete", f"domain/{domain}", details={"domain": domain}) as done:
        deleted = dataset_writes.delete_domain(ctx, tenant, domain, missing_ok=True)
        done.details["deleted_count"] = len(deleted)
    return {"deleted": deleted, "count": len(deleted)}


@router.route("/datasets/<domain>/<path:filename>", methods=["GET"], headers=DATASETS_V1)
def read_dataset(request: flask.Request, domain: str, filename: str):
    tenant, store, domain = _caller(request), bootstrap.context(), names.domain_name(domain)
    as_format = request.args.get("as", "json")
    if as_format not in {"json", "csv", "text"}:
        raise errors.BadRequest("'as' must be json, csv or text")
    record, _ = dataset_reads.resolve(store, tenant, domain, filename)
    if record.data["kind"] == "attachment":
        if as_format == "text":
            text = dataset_reads.attachment_text(store, tenant, domain, filename)
            return {"domain": record.data["domain"], "filename": record.data["name"], "text": text}
        return send_stream(*dataset_reads.original(store, tenant, domain, filename))
    if as_format == "csv":
        # The whole table unless n is asked for: the frontend caches this as the dataset itself.
        limit = int_arg(request, "n", 0)
        exported = dataset_reads.export(store, tenant, domain, filename, "csv", limit=limit if limit > 0 else None)
        return send_export(exported, as_attachment=False)
    rows = int_arg(request, "n", LEGACY_PREVIEW_ROWS)
    return {"records": dataset_reads.preview(store, tenant, domain, filename, rows)["rows"]}


@router.route("/datasets/<domain>/<path:filename>", methods=["DELETE"], headers=DATASETS_V1)
def delete_dataset(request: flask.Request, domain: str, filename: str):
    domain, tenant, ctx = names.domain_name(domain), _caller(request), bootstrap.context()
    with audit.audited(ctx, tenant.user_id, "dataset.delete", f"dataset/{domain}/{filename}",
                       details={"domain": domain, "filename": filename}):
        dataset_writes.delete(ctx, tenant, domain, filename)
    return {"deleted": True, "domain": domain, "filename": filename}


@router.route("/datasets/<domain>/<path:filename>/metadata", methods=["PUT"], headers=DATASETS_V1)
def update_metadata(request: flask.Request, domain: str, filename: str):
    body = json_body(request)
    view = dataset_writes.update_notes(bootstrap.context(), _caller(request, body), names.domain_name(domain), filename,
                                       body.get("description", ""), body.get("columns", []))
    return {"saved": True, "domain": view["domain"], "filename": view["name"]}


@router.route("/files/datasets/<user_id>/<domain>/<path:filename>", methods=["GET"])
def signed_file(request: flask.Request, user_id: str, domain: str, filename: str):
    from common.auth import Tenant
    from common.signing import HmacUrlSigner

    ctx = bootstrap.context()
    if not ctx.settings.url_signing_secret:
        raise errors.NotFound("no such file")
    HmacUrlSigner.from_setting(ctx.settings.url_signing_secret).verify(request.path, request.args,
                                                                       now=ctx.clock.now().timestamp())
    exported = dataset_reads.export(ctx, Tenant(user_id), names.domain_name(domain), filename, "csv")
    return send_export(exported, as_attachment=False)


@router.route("/domains", methods=["GET"], headers=DOMAINS_V1)
def list_domains(request: flask.Request):
    domains = dataset_reads.list_domains(bootstrap.context(), _caller(request))
    return {entry["domain"]: entry["datasets"] for entry in domains}


@router.route("/domains/<domain>/datasets", methods=["GET"], headers=DOMAINS_V1)
def domain_datasets(request: flask.Request, domain: str):
    return _listing(request, domain)


def legacy(request: flask.Request) -> flask.Response:
    """Entry point (functions-framework target `legacy`)."""
    return router(request)
