"""The blob store on a Google Cloud Storage bucket (or the emulator named by ``STORAGE_EMULATOR_HOST``).

``google.cloud.storage`` is imported when a store is built, never with this module: an instance that does
not use GCS must not pay for it at cold start. GCS writes are atomic and bump the object's generation.

A content type not given is guessed from the key's extension, as ``LocalBlobStore`` does, rather than from
the name of the uploaded file or the client library's default. Errors about the caller's own files
(``put_file``'s source, ``download``'s target) stay the ``OSError`` they are.
"""

from __future__ import annotations

import contextlib
import io
import logging
import mimetypes
from collections.abc import Iterator
from typing import Any, BinaryIO

from common.errors import NotFound, ServiceUnavailable, UpstreamError
from common.storage import BlobInfo, SignedUpload, check_key, check_prefix, delete_listed

log = logging.getLogger("convoinsight.storage")

# Bound the memory a big transfer holds at once (the client keeps two copies of an upload chunk and three of a
# read chunk); uploads are chunked in multiples of 256 KiB, as GCS requires.
_UPLOAD_CHUNK_BYTES = 8 * 1024 * 1024
_READ_CHUNK_BYTES = 4 * 1024 * 1024
# A health check answers fast rather than waiting out the client's two-minute retry deadline.
_PING_TIMEOUT_SECONDS = 5


class GcsBlobStore:
    """Keep each object in ``bucket_name`` under its key."""

    def __init__(self, bucket_name: str, client: Any = None):
        if client is None:
            from google.cloud import storage

            client = storage.Client()
        self._client = client
        self._bucket = client.bucket(bucket_name)
        self._warned_unsigned = False

    def put(self, key: str, data: bytes, *, content_type: str | None = None) -> BlobInfo:
        """Write ``data`` at ``key`` atomically, replacing any previous object."""
        blob = self._blob(key)
        with _translated(key):
            blob.upload_from_string(data, content_type=content_type or _guess_content_type(key))
        return _info(blob)

    def put_file(self, key: str, path: str, *, content_type: str | None = None) -> BlobInfo:
        """Stream the local file at ``path`` to ``key`` atomically, without reading it into memory."""
        blob = self._blob(key)
        # Files over 8 MiB go up as a resumable upload in chunks of this size, not in one chunk of 100 MiB.
        blob.chunk_size = _UPLOAD_CHUNK_BYTES
        with _translated(key):
            blob.upload_from_filename(path, content_type=content_type or _guess_content_type(key))
        return _info(blob)

    def signed_url(self, key: str, *, expires_at: Any, content_type: str) -> str | None:
        """Return a V4 URL that reads ``key`` (inline, as ``content_type``) until ``expires_at``, or None when
        these credentials cannot sign (the caller then serves the object through its own route)."""
        identity = self._signing_identity()
        if identity is None:
            return None
        with _translated(key):
            return self._blob(key).generate_signed_url(
                version="v4", expiration=expires_at, method="GET", response_type=content_type,
                response_disposition="inline", **identity)

    def upload_url(self, key: str, *, expires_at: Any, max_bytes: int) -> SignedUpload | None:
        """Return a V4 URL that takes one PUT of at most ``max_bytes`` to ``key`` until ``expires_at``.

        The length range is a signed header, so GCS itself refuses a bigger body, and the content type is
        fixed: what the bytes are is decided when the upload is committed, never by the client's label.
        """
        identity = self._signing_identity()
        if identity is None:
            return None
        headers = {"Content-Type": "application/octet-stream", "x-goog-content-length-range": f"0,{max_bytes}"}
        with _translated(key):
            url = self._blob(key).generate_signed_url(
                version="v4", expiration=expires_at, method="PUT", content_type=headers["Content-Type"],
                headers={"x-goog-content-length-range": headers["x-goog-content-length-range"]}, **identity)
        return SignedUpload(url=url, method="PUT", headers=headers)

    def _signing_identity(self) -> dict[str, Any] | None:
        """How these credentials sign: with their own key ({}), through IAM, or None when they cannot."""
        credentials = self._client._credentials
        if hasattr(credentials, "sign_bytes"):
            return {}
        if not hasattr(credentials, "service_account_email"):
            # The emulator's anonymous credentials (or a user's): no key and no service account to sign as.
            if not self._warned_unsigned:
                self._warned_unsigned = True
                log.warning("the storage credentials (%s) cannot sign URLs: objects are handed out through "
                            "the API's own signed routes instead", type(credentials).__name__)
            return None
        # Runtime credentials (Cloud Functions) hold no private key: sign through IAM signBlob as the
        # function's own service account (it holds serviceAccountTokenCreator on itself).
        import google.auth.transport.requests

        credentials.refresh(google.auth.transport.requests.Request())
        return {"service_account_email": credentials.service_account_email, "access_token": credentials.token}

    def get(self, key: str) -> bytes:
        """Return the whole object."""
        blob = self._blob(key)
        with _translated(key):
            return blob.download_as_bytes()

    def open(self, key: str) -> BinaryIO:
        """Open the object for streaming reads; the caller closes it."""
        check_key(key)
        with _translated(key):
            # Fetching the metadata first pins the generation, so every chunk comes from the same write.
            blob = self._bucket.get_blob(key)
        if blob is None:
            raise NotFound(f"no object at {key!r}")
        return _TranslatingReader(key, blob.open("rb", chunk_size=_READ_CHUNK_BYTES))  # type: ignore[return-value]

    def download(self, key: str, path: str) -> None:
        """Copy the object to the local file ``path``."""
        blob = self._blob(key)
        with _translated(key):
            blob.download_to_filename(path)

    def local_path(self, key: str) -> str | None:
        """Return None: a remote object has no local path."""
        check_key(key)
        return None

    def stat(self, key: str) -> BlobInfo:
        """Return the object's size, update time, generation and content type."""
        check_key(key)
        with _translated(key):
            blob = self._bucket.get_blob(key)
        if blob is None:
            raise NotFound(f"no object at {key!r}")
        return _info(blob)

    def exists(self, key: str) -> bool:
        """Say whether an object exists at ``key``."""
        blob = self._blob(key)
        with _translated(key):
            return blob.exists()

    def delete(self, key: str) -> None:
        """Remove the object."""
        blob = self._blob(key)
        with _translated(key):
            blob.delete()

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object under ``prefix``; return how many were removed (0 when none)."""
        return delete_listed(self, prefix)

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        """Yield every object whose key starts with ``prefix``, ordered by key."""
        check_prefix(prefix)
        with _translated(prefix):
            infos = [_info(blob) for blob in self._client.list_blobs(self._bucket, prefix=prefix or None)]
        # GCS lists in key order already; the emulator is not bound to, so sort rather than trust it.
        return iter(sorted(infos, key=lambda info: info.key))

    def ping(self) -> None:
        """Raise ``ServiceUnavailable`` when the bucket cannot be listed."""
        # Listing needs only the object permissions the services use anyway, unlike reading bucket metadata.
        try:
            with _translated(""):
                blobs = self._client.list_blobs(self._bucket, max_results=1, retry=None, timeout=_PING_TIMEOUT_SECONDS)
                next(iter(blobs), None)
        except NotFound as error:
            raise ServiceUnavailable(f"bucket {self._bucket.name!r} does not exist") from error
        except UpstreamError as error:
            raise ServiceUnavailable("cloud storage refused to list the bucket") from error

    def _blob(self, key: str) -> Any:
        return self._bucket.blob(check_key(key))


class _TranslatingReader(io.RawIOBase):
    """A ``BlobReader`` whose errors arrive as ``common.errors``, e.g. when the object is replaced mid-read."""

    def __init__(self, key: str, blob_reader: Any):
        super().__init__()
        self._key = key
        self._blob_reader = blob_reader

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        with _translated(self._key):
            return self._blob_reader.read(-1 if size is None else size)

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._blob_reader.close()
        super().close()


def _info(blob: Any) -> BlobInfo:
    return BlobInfo(
        key=blob.name,
        size=blob.size,
        updated=blob.updated,
        generation=str(blob.generation),
        content_type=blob.content_type or "application/octet-stream",
    )


def _guess_content_type(key: str) -> str:
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


@contextlib.contextmanager
def _translated(key: str) -> Iterator[None]:
    """Raise the client's errors as ``common.errors``; vendor messages, which name the bucket, stay in the cause."""
    from google.api_core import exceptions as api_errors
    from google.auth import exceptions as auth_errors
    from requests import RequestException

    try:
        yield
    except api_errors.NotFound as error:
        raise NotFound(f"no object at {key!r}") from error
    except (
        api_errors.TooManyRequests,
        api_errors.ServerError,
        api_errors.RetryError,
        auth_errors.GoogleAuthError,
        RequestException,
    ) as error:
        raise ServiceUnavailable("cloud storage is unavailable") from error
    except api_errors.GoogleAPICallError as error:
        raise UpstreamError("cloud storage refused the request") from error
