"""Direct uploads: the client sends a big file to storage itself, then asks for it to be committed.

In the cloud a function's request is capped at 32 MiB (Cloud Run's HTTP/1 limit, and API Gateway's), so a big
spreadsheet cannot come through ``POST /api/v1/datasets`` (``MAX_UPLOAD_BYTES``). Instead, up to
``DIRECT_UPLOAD_MAX_BYTES``:

1. ``start`` reserves an upload: a record in the tenant's ``uploads`` collection and a URL that takes one PUT
   of at most the announced size at a staging key of the tenant's (a GCS V4 signed URL in the cloud, where
   GCS itself enforces the size; locally an HMAC-signed path the datasets function serves, ``receive``).
2. The client PUTs the bytes there.
3. ``commit`` checks that the staged file is exactly the size reserved, then ingests it exactly as a multipart
   upload is ingested (the same checks, the same atomic version commit), and removes it.

A commit is claimed with compare-and-set, so two at once cannot both ingest (the second is told to wait),
and a repeated commit answers the first one's result. A file that fails its checks fails the upload for
good (the same bytes would fail again) and its staged copy goes; a failure of our own backends leaves it
pending, to be committed again. So does a staged file of another size than reserved (a PUT cut short, or
the wrong file): the commit is refused, naming both sizes, and a PUT of the whole file makes it committable
again. Staged files nobody commits are removed by the cleanup sweep.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import Callable
from typing import IO, Any

from common import errors, names, scratch
from common.auth import Tenant
from common.metadata import Record, update_record
from common.names import Domain
from common.ports import DataPorts
from common.services import dataset_reads
from common.services import datasets as dataset_writes
from common.storage import SignedUpload, keys
from common.uploads import ReceivedFile

COLLECTION = "uploads"
COMMIT_LEASE = dt.timedelta(minutes=10)
SIZE_MISMATCH = "UPLOAD_SIZE_MISMATCH"
_COPY_CHUNK_BYTES = 1024 * 1024


def start(deps: DataPorts, tenant: Tenant, body: dict[str, Any], *,
          local_url: Callable[[str, dt.datetime], str]) -> dict[str, Any]:
    """Reserve an upload of ``{domain, filename, size_bytes}``; return its view with where to send the file.

    ``local_url(upload_id, expires_at)`` builds the signed path of ``receive`` when the store signs none.
    """
    from common.analysis.formats import format_for_filename

    domain = names.domain_name(body.get("domain"))
    name = names.dataset_name(body.get("filename"))
    format_for_filename(name)  # an unsupported extension is refused now, not after the transfer
    size = body.get("size_bytes")
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise errors.BadRequest("size_bytes must be the file's size in bytes (a positive integer)",
                                code="INVALID_FIELD")
    _check_limit(deps, size)
    upload_id = secrets.token_hex(12)
    now = deps.clock.now()
    expires_at = now + dt.timedelta(seconds=deps.settings.upload_url_ttl_seconds)
    staging_key = keys.staged_upload_key(tenant, upload_id, name)
    target = deps.blobs.upload_url(staging_key, expires_at=expires_at, max_bytes=size)
    if target is None:
        target = SignedUpload(url=local_url(upload_id, expires_at), method="PUT",
                              headers={"Content-Type": "application/octet-stream"})
    record = deps.metadata.put(COLLECTION, tenant.user_id, upload_id, {
        "upload_id": upload_id, "domain": domain, "name": name, "size_bytes": size, "staging_key": staging_key,
        "status": "pending", "expires_at": expires_at.isoformat()}, expected_revision=None)
    return {**upload_view(record), "upload": {"url": target.url, "method": target.method,
                                               "headers": target.headers}}


def get_upload(deps: DataPorts, tenant: Tenant, upload_id: str) -> Record:
    """Return the upload's record, or a 404 (also for another tenant's upload)."""
    try:
        return deps.metadata.get(COLLECTION, tenant.user_id, upload_id)
    except errors.NotFound:
        raise errors.NotFound(f"upload {upload_id!r} not found", code="UPLOAD_NOT_FOUND") from None


def receive(deps: DataPorts, tenant: Tenant, upload_id: str, body: IO[bytes], content_length: int | None) -> dict:
    """Store the body of a PUT to a local upload URL as the staged file (the signature was checked)."""
    data = get_upload(deps, tenant, upload_id).data
    if data["status"] != "pending":
        raise errors.Conflict(f"upload {upload_id!r} is {data['status']}", code="UPLOAD_NOT_PENDING")
    reserved = data["size_bytes"]
    _check_limit(deps, reserved)
    if content_length is not None and content_length > reserved:
        raise _size_mismatch(reserved, content_length, staged=False)
    with scratch.directory("direct-upload-") as workdir:
        path = os.path.join(workdir, "staged")
        size = 0
        with open(path, "wb") as staged:
            while chunk := body.read(_COPY_CHUNK_BYTES):
                size += len(chunk)
                if size > reserved:
                    raise _size_mismatch(reserved, None, staged=False)
                staged.write(chunk)
        if size == 0:
            raise errors.BadRequest("the body is empty: PUT the file's bytes", code="EMPTY_FILE")
        if size != reserved:  # nothing is staged: a file staged by an earlier PUT stays as it was
            raise _size_mismatch(reserved, size, staged=False)
        deps.blobs.put_file(data["staging_key"], path, content_type="application/octet-stream")
    return {"upload_id": upload_id, "received_bytes": size}


def commit(deps: DataPorts, tenant: Tenant, upload_id: str) -> tuple[list[dict], bool]:
    """Ingest the staged file as a new dataset version; return (dataset views, whether this call did it)."""
    now = deps.clock.now()
    record = get_upload(deps, tenant, upload_id)
    if record.data["status"] == "committed":
        return record.data["datasets"], False
    _check_limit(deps, record.data["size_bytes"])
    _check_staged(deps, record.data)
    claimed = _update(deps, tenant, upload_id, lambda data: _claim(data, now))
    data = claimed.data
    try:
        items = _ingest_staged(deps, tenant, data)
    except errors.AppError as exc:
        if exc.status >= 500 or exc.code == SIZE_MISMATCH:  # ours, or a PUT that replaced the file meanwhile
            _update(deps, tenant, upload_id, _release)
            raise
        error = {"code": exc.code, "message": exc.message}
        _update(deps, tenant, upload_id, lambda data: {**data, "status": "failed", "error": error})
        _remove_staged(deps, data["staging_key"])
        raise
    except BaseException:
        _update(deps, tenant, upload_id, _release)
        raise
    _update(deps, tenant, upload_id, lambda data: {**data, "status": "committed", "datasets": items,
                                                              "committed_at": now.isoformat()})
    _remove_staged(deps, data["staging_key"])
    return items, True


def abort(deps: DataPorts, tenant: Tenant, upload_id: str) -> None:
    """Forget an upload that is not being committed, and its staged file."""
    record = get_upload(deps, tenant, upload_id)
    if record.data["status"] == "committing" and not _lease_over(record.data, deps.clock.now()):
        raise errors.Conflict("the upload is being committed", code="UPLOAD_IN_PROGRESS")
    _remove_staged(deps, record.data["staging_key"])
    try:
        deps.metadata.delete(COLLECTION, tenant.user_id, upload_id, expected_revision=record.revision)
    except errors.NotFound:
        pass


def upload_view(record: Record) -> dict[str, Any]:
    data = record.data
    view = {key: data[key] for key in ("upload_id", "domain", "name", "size_bytes", "status", "expires_at")}
    view["commit_url"] = f"/api/v1/uploads/{data['upload_id']}/commit"
    if data["status"] == "committed":
        view["datasets"] = data["datasets"]
    if data["status"] == "failed":
        view["error"] = data["error"]
    return view


def _check_limit(deps: DataPorts, size: int) -> None:
    """Refuse a file above ``DIRECT_UPLOAD_MAX_BYTES`` with a 413.

    Checked at the reservation, and again at the PUT and the commit, so a lowered limit also stops the uploads
    reserved before it (changing nothing: a raised limit makes them committable again).
    """
    limit = deps.settings.direct_upload_max_bytes
    if size > limit:
        raise errors.PayloadTooLarge(f"the file is larger than the limit of {limit:,} bytes for a direct upload",
                                     details={"limit_bytes": limit})


def _size_mismatch(reserved: int, received: int | None, *, staged: bool) -> errors.AppError:
    """Refuse a file that is not the size reserved, naming both sizes (``received`` None: more, not all read).

    Bigger is 413 (nothing can fix it but a new reservation); smaller is a body cut short, 400 at the PUT,
    or 409 at the commit, where a PUT of the whole file makes the upload committable again.
    """
    what = "the staged file" if staged else "the body"
    details = {"reserved_bytes": reserved, "received_bytes": received}
    if received is None or received > reserved:
        size = f"more than {reserved:,} bytes" if received is None else f"{received:,} bytes"
        return errors.PayloadTooLarge(f"{what} is {size} but the upload reserved {reserved:,}: abort the upload "
                                      "and reserve the file's real size", code=SIZE_MISMATCH, details=details)
    error = errors.Conflict if staged else errors.BadRequest
    return error(f"{what} is {received:,} bytes but the upload reserved {reserved:,}: PUT the whole file to the "
                 "upload's url, or abort the upload and reserve the file's real size",
                 code=SIZE_MISMATCH, details=details)


def _check_staged(deps: DataPorts, data: dict[str, Any]) -> None:
    """Refuse to commit before the file is there, or when it is not the size reserved (changing nothing).

    The size is the stored object's own: in the cloud the client PUT it to GCS, whose signed length range
    bounds it from above only.
    """
    if data["status"] not in ("pending", "committing"):
        return  # _claim says why it cannot be committed
    try:
        staged = deps.blobs.stat(data["staging_key"])
    except errors.NotFound:
        raise errors.Conflict("nothing was uploaded yet: PUT the file to the upload's url, then commit",
                              code="UPLOAD_INCOMPLETE") from None
    if staged.size != data["size_bytes"]:
        raise _size_mismatch(data["size_bytes"], staged.size, staged=True)


def _ingest_staged(deps: DataPorts, tenant: Tenant, data: dict[str, Any]) -> list[dict]:
    with scratch.directory("direct-upload-") as workdir:
        path = os.path.join(workdir, "staged")
        deps.blobs.download(data["staging_key"], path)
        size = os.path.getsize(path)
        if size != data["size_bytes"]:  # a PUT replaced the file after _check_staged looked at it
            raise _size_mismatch(data["size_bytes"], size, staged=True)
        received = ReceivedFile("file", data["name"], path, size, "application/octet-stream")
        records = dataset_writes.upload(deps, tenant, Domain(data["domain"]), [received])
    return dataset_reads.views_with_names(deps, tenant, Domain(data["domain"]), records)


def _claim(data: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    if data["status"] == "committed":
        raise errors.Conflict("the upload was committed meanwhile; commit again for its result",
                              code="UPLOAD_IN_PROGRESS")
    if data["status"] == "failed":
        raise errors.Conflict(f"the upload failed: {data['error']['message']}", code="UPLOAD_FAILED")
    if data["status"] == "committing" and not _lease_over(data, now):
        raise errors.Conflict("the upload is being committed; ask again in a moment", code="UPLOAD_IN_PROGRESS")
    return {**data, "status": "committing", "lease_until": (now + COMMIT_LEASE).isoformat()}


def _release(data: dict[str, Any]) -> dict[str, Any] | None:
    return {**data, "status": "pending"} if data["status"] == "committing" else None


def _lease_over(data: dict[str, Any], now: dt.datetime) -> bool:
    return data.get("lease_until", "") < now.isoformat()


def _update(deps: DataPorts, tenant: Tenant, upload_id: str,
            change: Callable[[dict[str, Any]], dict[str, Any] | None]) -> Record | None:
    try:
        return update_record(deps.metadata, COLLECTION, tenant.user_id, upload_id, change)
    except errors.NotFound:
        raise errors.NotFound(f"upload {upload_id!r} not found", code="UPLOAD_NOT_FOUND") from None


def _remove_staged(deps: DataPorts, key: str) -> None:
    try:
        deps.blobs.delete(key)
    except errors.NotFound:
        pass
