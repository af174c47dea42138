"""Request helpers shared by the function files: who is calling, and file responses."""

from __future__ import annotations

from typing import Any

import flask

from common import bootstrap
from common.auth import Tenant, authenticate
from common.services.dataset_reads import ExportedFile
from common.uploads import ReceivedFile, receive_multipart


def tenant_of(request: flask.Request, *, legacy_user_id: str | None = None, spend: str | None = None) -> Tenant:
    """Authenticate the request with this instance's settings; ``spend`` counts it against a rate limit."""
    ctx = bootstrap.context()
    tenant = authenticate(request.headers, ctx.settings, legacy_user_id=legacy_user_id)
    if spend is not None:
        ctx.rate_limiter.hit(spend, tenant.namespace)
    return tenant


def receive_clip(request: flask.Request, workdir: str, max_bytes: int) -> tuple[dict[str, Any], ReceivedFile | None]:
    """Stream a voice clip (multipart field ``file``) to ``workdir``, 413 past ``max_bytes``; return (fields, clip)."""
    fields, files = receive_multipart(request, workdir, max_file_bytes=max_bytes, max_files=1, file_fields=("file",))
    return fields, (files[0] if files else None)


def send_export(exported: ExportedFile, *, as_attachment: bool = True) -> flask.Response:
    """Stream an exported temporary file, removing it once sent."""
    response = flask.send_file(exported.path, mimetype=exported.content_type, as_attachment=as_attachment,
                               download_name=exported.download_name, conditional=False, etag=False)
    # send_file takes a bare mimetype and appends "; charset=utf-8" to a text one: say exactly ours instead.
    response.content_type = exported.content_type
    response.call_on_close(exported.remove)
    return response


def send_stream(stream: Any, content_type: str, filename: str, *, inline: bool = True) -> flask.Response:
    """Stream an open binary file object as exactly ``content_type``, closing it when done."""

    def chunks() -> Any:
        try:
            while chunk := stream.read(256 * 1024):
                yield chunk
        finally:
            stream.close()

    disposition = "inline" if inline else "attachment"
    # content_type, not mimetype: werkzeug would append a second charset (or a wrong one) to a text type.
    response = flask.Response(chunks(), content_type=content_type, direct_passthrough=True)
    response.headers.set("Content-Disposition", disposition, filename=filename)
    return response
