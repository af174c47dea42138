"""Function `datasets`: upload, list, preview, download and delete a tenant's datasets and domains."""

from __future__ import annotations

import tempfile

import flask

from common import bootstrap, errors
from common.http import Router, int_arg, json_body
from common.services import dataset_reads, domain_sql
from common.services import datasets as dataset_writes
from common.uploads import receive_multipart
from common.web import dataset_store, send_export, send_stream, tenant_of

router = Router("datasets")

FILE_FIELDS = ("file", "files", "files[]")


@router.route("/api/v1/datasets", methods=["POST"])
def upload(request: flask.Request):
    tenant = tenant_of(request, spend="upload")
    settings = bootstrap.context().settings
    with tempfile.TemporaryDirectory(prefix="upload-") as workdir:
        form, files = receive_multipart(request, workdir, max_file_bytes=settings.max_upload_bytes,
                                        max_files=dataset_writes.MAX_FILES_PER_UPLOAD, file_fields=FILE_FIELDS)
        if not form.get("domain"):
            raise errors.BadRequest("the form field 'domain' is required", code="MISSING_FIELD")
        records = dataset_writes.upload(dataset_store(), tenant, form["domain"], files)
    return {"items": [dataset_writes.dataset_view(record) for record in records]}, 201


@router.route("/api/v1/datasets", methods=["GET"])
def list_datasets(request: flask.Request):
    tenant = tenant_of(request)
    return {"items": dataset_reads.list_datasets(dataset_store(), tenant, request.args.get("domain") or None)}


@router.route("/api/v1/datasets/<domain>/<path:name>", methods=["GET"])
def get_dataset(request: flask.Request, domain: str, name: str):
    tenant = tenant_of(request)
    store = dataset_store()
    fmt = request.args.get("format")
    if fmt == "original":
        return send_stream(*dataset_reads.original(store, tenant, domain, name), inline=False)
    if fmt:
        return send_export(dataset_reads.export(store, tenant, domain, name, fmt))
    rows = int_arg(request, "n", 20, minimum=0, maximum=100_000)
    return dataset_reads.preview(store, tenant, domain, name, rows) if rows else \
        dataset_reads.get_dataset(store, tenant, domain, name)


@router.route("/api/v1/datasets/<domain>/<path:name>", methods=["DELETE"])
def delete_dataset(request: flask.Request, domain: str, name: str):
    tenant = tenant_of(request)
    dataset_writes.delete(dataset_store(), tenant, domain, name)
    return {"deleted": True, "domain": domain, "name": name}


@router.route("/api/v1/datasets/<domain>", methods=["DELETE"])
def delete_domain(request: flask.Request, domain: str):
    tenant = tenant_of(request)
    deleted = dataset_writes.delete_domain(dataset_store(), tenant, domain)
    return {"deleted": deleted, "count": len(deleted)}


@router.route("/api/v1/domains", methods=["GET"])
def list_domains(request: flask.Request):
    tenant = tenant_of(request)
    return {"items": dataset_reads.list_domains(dataset_store(), tenant)}


@router.route("/api/v1/domains/<domain>/tables", methods=["GET"])
def list_domain_tables(request: flask.Request, domain: str):
    tenant = tenant_of(request)
    return domain_sql.list_tables(dataset_store(), tenant, domain)


@router.route("/api/v1/domains/<domain>/sql", methods=["POST"])
def run_domain_sql(request: flask.Request, domain: str):
    tenant = tenant_of(request)
    body = json_body(request)
    return domain_sql.query(dataset_store(), tenant, domain, body.get("sql"), body.get("limit"))


def datasets(request: flask.Request) -> flask.Response:
    """Entry point (functions-framework target `datasets`)."""
    return router(request)
