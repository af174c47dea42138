"""The blob store port: bytes under string keys.

Keys are ``/``-separated paths laid out by ``common.storage.keys`` (``tenants/<namespace>/datasets/...``); every segment
is non-empty, is not ``.`` or ``..``, and holds no backslash, NUL or control character. Adapters refuse any
other key with ``BadRequest`` before touching storage, so no key can escape the store.

Invariants every adapter keeps (``tests/contract/test_blob_store.py`` checks them on every backend):
- ``put``/``put_file`` are atomic: a reader sees the whole old object or the whole new one, never a part.
- reading, stat-ing or deleting a missing key raises ``common.errors.NotFound``.
- ``list`` yields every object under a prefix, ordered by key, and only objects (no directories).
- ``generation`` changes on every write of a key.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from typing import BinaryIO, Protocol

from common.errors import BadRequest, NotFound


@dataclasses.dataclass(frozen=True)
class BlobInfo:
    key: str
    size: int
    updated: dt.datetime
    generation: str
    content_type: str = "application/octet-stream"


@dataclasses.dataclass(frozen=True)
class SignedUpload:
    """Where a client sends one file itself: ``method`` to ``url`` with exactly these ``headers``."""

    url: str
    method: str
    headers: dict[str, str]


class BlobStore(Protocol):
    """Stores immutable-by-convention objects under keys; see the module docstring for invariants."""

    def put(self, key: str, data: bytes, *, content_type: str | None = None) -> BlobInfo:
        """Write ``data`` at ``key`` atomically, replacing any previous object."""

    def put_file(self, key: str, path: str, *, content_type: str | None = None) -> BlobInfo:
        """Stream the local file at ``path`` to ``key`` atomically, without reading it into memory."""

    def get(self, key: str) -> bytes:
        """Return the whole object."""

    def open(self, key: str) -> BinaryIO:
        """Open the object for streaming reads; the caller closes it."""

    def download(self, key: str, path: str) -> None:
        """Copy the object to the local file ``path``."""

    def signed_url(self, key: str, *, expires_at: dt.datetime, content_type: str) -> str | None:
        """A URL a browser can read the object from until ``expires_at``, or None if this store cannot sign."""

    def upload_url(self, key: str, *, expires_at: dt.datetime, max_bytes: int) -> SignedUpload | None:
        """A URL a client can PUT at most ``max_bytes`` to ``key`` with until ``expires_at``, or None if this
        store cannot sign one (then the datasets function receives the bytes itself)."""

    def local_path(self, key: str) -> str | None:
        """A filesystem path the object can be read from in place, or None when the store is remote."""

    def stat(self, key: str) -> BlobInfo:
        """Return the object's size, update time, generation and content type."""

    def exists(self, key: str) -> bool:
        """Say whether an object exists at ``key``."""

    def delete(self, key: str) -> None:
        """Remove the object."""

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object under ``prefix``; return how many were removed (0 when none)."""

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        """Yield every object whose key starts with ``prefix``, ordered by key."""

    def ping(self) -> None:
        """Raise ``ServiceUnavailable`` when the backend cannot be reached."""


_FORBIDDEN_IN_SEGMENT = {"\\", "\x00"}


def check_key(key: str) -> str:
    """Return ``key`` if it is a safe blob key (see module docstring), else raise ``BadRequest``."""
    if not isinstance(key, str) or not key or len(key) > 1024:
        raise BadRequest("invalid storage key")
    for segment in key.split("/"):
        if segment in {"", ".", ".."} or any(ch in _FORBIDDEN_IN_SEGMENT or ord(ch) < 32 for ch in segment):
            raise BadRequest("invalid storage key")
    return key


def check_prefix(prefix: str) -> str:
    """Like ``check_key`` but allows the empty prefix and one trailing slash."""
    if prefix == "":
        return prefix
    check_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix


def delete_listed(store: BlobStore, prefix: str) -> int:
    """Delete each object ``store.list(prefix)`` yields; return how many this call removed."""
    removed = 0
    for info in store.list(prefix):
        try:
            store.delete(info.key)
            removed += 1
        except NotFound:
            continue  # a concurrent delete got there first
    return removed
