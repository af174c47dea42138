"""Function `datasets`: upload (through the function, or directly to storage and then committed), list, preview,
download and delete a tenant's datasets and domains."""

from __future__ import annotations

import flask

from common import audit, bootstrap, errors, names, scratch
from common.analysis.export_formats import FORMATS, download_format
from common.auth import Tenant
from common.downloads import send_result
from common.http import Router, int_arg, json_body
from common.services import dataset_reads, direct_uploads, domain_sql, result_download
from common.services import datasets as dataset_writes
from common.signing import HmacUrlSigner
from common.uploads import receive_multipart
from common.web import send_export, send_stream, tenant_of

router = Router("datasets")

FILE_FIELDS = ("file", "files", "files[]")


@router.route("/api/v1/datasets", methods=["POST"])
def upload(request: flask.Request):
    tenant = tenant_of(request, spend="upload")
    ctx = bootstrap.context()
    with scratch.directory("upload-") as workdir:
        form, files = receive_multipart(request, workdir, max_file_bytes=ctx.settings.max_upload_bytes,
                                        max_files=dataset_writes.MAX_FILES_PER_UPLOAD, file_fields=FILE_FIELDS)
        if not form.get("domain"):
            raise errors.BadRequest("the form field 'domain' is required", code="MISSING_FIELD")
        domain = names.domain_name(form["domain"])
        records = dataset_writes.upload(ctx, tenant, domain, files)
    return {"items": dataset_reads.views_with_names(ctx, tenant, domain, records)}, 201


@router.route("/api/v1/datasets", methods=["GET"])
def list_datasets(request: flask.Request):
    tenant = tenant_of(request)
    domain = request.args.get("domain")
    return {"items": dataset_reads.list_datasets(bootstrap.context(), tenant,
                                                 names.domain_name(domain) if domain else None)}


@router.route("/api/v1/datasets/<domain>/<path:name>", methods=["GET"])
def get_dataset(request: flask.Request, domain: str, name: str):
    tenant, domain = tenant_of(request), names.domain_name(domain)
    ctx = bootstrap.context()
    fmt = request.args.get("format")
    if fmt:
        dataset_reads.check_download_format(fmt)
    if fmt == "original":
        return send_stream(*dataset_reads.original(ctx, tenant, domain, name), inline=False)
    if fmt:
        return send_export(dataset_reads.export(ctx, tenant, domain, name, fmt))
    rows = int_arg(request, "n", 20, minimum=0, maximum=100_000)
    return dataset_reads.preview(ctx, tenant, domain, name, rows) if rows else \
        dataset_reads.get_dataset(ctx, tenant, domain, name)


@router.route("/api/v1/datasets/<domain>/<path:name>", methods=["DELETE"])
def delete_dataset(request: flask.Request, domain: str, name: str):
    tenant, domain, ctx = tenant_of(request), names.domain_name(domain), bootstrap.context()
    with audit.audited(ctx, tenant.user_id, "dataset.delete", f"dataset/{domain}/{name}",
                       details={"domain": domain, "filename": name}):
        dataset_writes.delete(ctx, tenant, domain, name)
    return {"deleted": True, "domain": domain, "name": name}


@router.route("/api/v1/datasets/<domain>", methods=["DELETE"])
def delete_domain(request: flask.Request, domain: str):
    tenant, domain, ctx = tenant_of(request), names.domain_name(domain), bootstrap.context()
    with audit.audited(ctx, tenant.user_id, "domain.delete", f"domain/{domain}", details={"domain": domain}) as done:
        deleted = dataset_writes.delete_domain(ctx, tenant, domain, missing_ok=False)
        done.details["deleted_count"] = len(deleted)
    return {"deleted": deleted, "count": len(deleted)}


@router.route("/api/v1/domains", methods=["GET"])
def list_domains(request: flask.Request):
    tenant = tenant_of(request)
    return {"items": dataset_reads.list_domains(bootstrap.context(), tenant)}


@router.route("/api/v1/domains/<domain>/tables", methods=["GET"])
def list_domain_tables(request: flask.Request, domain: str):
    tenant = tenant_of(request)
    return domain_sql.list_tables(bootstrap.context(), tenant, names.domain_name(domain))


@router.route("/api/v1/domains/<domain>/sql", methods=["POST"], body_fields=("sql", "limit", "dialect"))
def run_domain_sql(request: flask.Request, domain: str):
    tenant = tenant_of(request, spend="sql")
    fmt = download_format(request.args.get("format"), default="json", accepted=("json", *FORMATS))
    body = json_body(request)
    ctx, domain = bootstrap.context(), names.domain_name(domain)
    if fmt == "json":
        return domain_sql.query(ctx, tenant, domain, body.get("sql"), body.get("limit"), dialect=body.get("dialect"))
    return send_result(ctx.settings.result_download_concurrency, lambda: result_download.domain_query_result(
        ctx, tenant, domain, body.get("sql"), body.get("limit"), body.get("dialect"), fmt))


@router.route("/api/v1/uploads", methods=["POST"], body_fields=("domain", "filename", "size_bytes"))
def start_direct_upload(request: flask.Request):
    tenant = tenant_of(request, spend="upload")
    body = json_body(request)
    ctx = bootstrap.context()

    def local_url(upload_id: str, expires_at) -> str:
        # Signed with the tenant in it: the PUT carries no credentials, as a PUT to a GCS signed URL would not.
        return HmacUrlSigner.from_setting(ctx.settings.url_signing_secret).sign(
            f"/api/v1/uploads/{upload_id}/content", expires_at=int(expires_at.timestamp()),
            params={"tenant": tenant.user_id}, method="PUT")

    return direct_uploads.start(ctx, tenant, body, local_url=local_url), 201


@router.route("/api/v1/uploads/<upload_id>", methods=["GET"])
def get_direct_upload(request: flask.Request, upload_id: str):
    tenant = tenant_of(request)
    return direct_uploads.upload_view(direct_uploads.get_upload(bootstrap.context(), tenant, upload_id))


@router.route("/api/v1/uploads/<upload_id>", methods=["DELETE"])
def abort_direct_upload(request: flask.Request, upload_id: str):
    direct_uploads.abort(bootstrap.context(), tenant_of(request), upload_id)
    return {"deleted": True, "upload_id": upload_id}


@router.route("/api/v1/uploads/<upload_id>/content", methods=["PUT"])
def receive_direct_upload(request: flask.Request, upload_id: str):
    ctx = bootstrap.context()
    HmacUrlSigner.from_setting(ctx.settings.url_signing_secret).verify(
        request.path, request.args, now=ctx.clock.now().timestamp(), method="PUT")
    return direct_uploads.receive(ctx, Tenant(request.args["tenant"]), upload_id, request.stream,
                                  request.content_length)


@router.route("/api/v1/uploads/<upload_id>/commit", methods=["POST"])
def commit_direct_upload(request: flask.Request, upload_id: str):
    items, created = direct_uploads.commit(bootstrap.context(), tenant_of(request), upload_id)
    return {"items": items}, 201 if created else 200


def datasets(request: flask.Request) -> flask.Response:
    """Entry point (functions-framework target `datasets`)."""
    return router(request)
