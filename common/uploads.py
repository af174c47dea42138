"""Receive uploaded files by streaming them to temporary files, enforcing the size limit as bytes arrive.

The request body is never buffered whole: werkzeug's multipart parser writes each file part through a
counting file that raises 413 the moment one file passes ``MAX_UPLOAD_BYTES``, before the rest is read. A
Content-Length over the limit is refused before anything is read, and a chunked body (no Content-Length) is
cut at the same limit while it streams. Form fields and file names must be valid text (``common.bodies``).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from typing import IO, Any

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser

from common import bodies, errors

# Multipart overhead allowed on top of the files themselves (boundaries, headers, small fields).
_FORM_OVERHEAD_BYTES = 1024 * 1024
_RAW_BODY_EXTENSIONS = {
    "application/pdf": ".pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/msword": ".doc",
    "text/csv": ".csv",
}


@dataclasses.dataclass(frozen=True)
class ReceivedFile:
    field: str
    filename: str
    path: str
    size: int
    content_type: str


class _LimitedTempFile:
    """A temporary file that refuses to grow past ``limit`` bytes."""

    def __init__(self, directory: str, limit: int):
        self._file = tempfile.NamedTemporaryFile(dir=directory, delete=False, prefix="part-")
        self.name = self._file.name
        self._limit = limit
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.size > self._limit:
            raise errors.PayloadTooLarge(f"a file is larger than the limit of {self._limit} bytes",
                                         details={"limit_bytes": self._limit})
        return self._file.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


def receive_multipart(request: Any, workdir: str, *, max_file_bytes: int, max_files: int,
                      file_fields: tuple[str, ...]) -> tuple[dict[str, str], list[ReceivedFile]]:
    """Parse a multipart request into (form fields, files saved under ``workdir``)."""
    if request.mimetype != "multipart/form-data":
        raise errors.UnsupportedMediaType("send the files as multipart/form-data")
    limit = max_file_bytes * max_files + _FORM_OVERHEAD_BYTES
    if request.content_length is not None and request.content_length > limit:
        raise errors.PayloadTooLarge(f"the upload is larger than the limit of {max_file_bytes} bytes per file")
    parts: list[_LimitedTempFile] = []

    def stream_factory(**_: Any) -> IO:
        part = _LimitedTempFile(workdir, max_file_bytes)
        parts.append(part)
        return part  # type: ignore[return-value]

    parser = FormDataParser(stream_factory=stream_factory, max_form_memory_size=_FORM_OVERHEAD_BYTES,
                            max_content_length=limit, max_form_parts=max_files * 4 + 20)
    stream = bodies.bounded_stream(request, limit)
    try:
        _, form, files = parser.parse(stream, request.mimetype, request.content_length, request.mimetype_params)
    except RequestEntityTooLarge:
        raise errors.PayloadTooLarge(f"the upload is larger than the limit of {max_file_bytes} bytes per file") \
            from None
    bodies.mark_read_if_ended(request, stream)
    if not all(isinstance(name, str) and name for name in (*form.keys(), *files.keys())):
        raise errors.BadRequest("every part of the form needs a name (Content-Disposition: form-data; name=...)")
    bodies.check_fields(form.items(multi=True), "form field")
    for name, storage in files.items(multi=True):
        bodies.check_text(storage.filename or "", f"the file name of part {name!r}")
    received = []
    for field in file_fields:
        for storage in files.getlist(field):
            if not storage.filename:
                continue
            storage.stream.flush()
            received.append(ReceivedFile(field, storage.filename, storage.stream.name,
                                         os.path.getsize(storage.stream.name), storage.mimetype or ""))
    if len(received) > max_files:
        raise errors.BadRequest(f"at most {max_files} files per upload")
    return {key: form.get(key) for key in form.keys()}, received


def receive_raw_body(request: Any, workdir: str, *, max_file_bytes: int) -> ReceivedFile:
    """Save a raw (non-multipart) request body as one file; its name comes from ?filename= or X-Filename."""
    if request.content_length is not None and request.content_length > max_file_bytes:
        raise errors.PayloadTooLarge(f"the file is larger than the limit of {max_file_bytes} bytes")
    stream = bodies.bounded_stream(request, max_file_bytes + 1)
    part = _LimitedTempFile(workdir, max_file_bytes)
    try:
        with part._file:
            while chunk := stream.read(1024 * 1024):
                part.write(chunk)
    except RequestEntityTooLarge:
        raise errors.PayloadTooLarge(f"the file is larger than the limit of {max_file_bytes} bytes") from None
    bodies.mark_read(request)
    if part.size == 0:
        raise errors.BadRequest("No file provided", code="NO_FILE")
    filename = request.args.get("filename") or request.headers.get("X-Filename")
    if filename:
        bodies.check_text(filename, "the file name")
    else:
        extension = _RAW_BODY_EXTENSIONS.get(request.mimetype, "")
        filename = f"upload_{int(time.time())}{extension}"
    return ReceivedFile("body", filename, part.name, part.size, request.mimetype or "")
