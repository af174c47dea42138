"""The blob store on the local filesystem: the object at key ``a/b/c`` is the file ``<root>/a/b/c``.

Files the store keeps for itself carry a backslash in their name. No key segment may hold one
(``check_key``), so they can never collide with an object, and ``list`` skips every name that is not a key:
- ``\\tmp-<random>``: a write in progress. Each write fills a fresh temp file beside its target and
  ``os.replace``-s it into place, so readers see the whole old file or the whole new one.
- ``<name>\\content-type``: the object's content type, kept only when it differs from what the key's
  extension says; without it the type is guessed from the key, as it is for files put there by hand.
  It is replaced just after the data, so a reader racing a write may briefly pair new bytes with the old type.

The generation is ``<mtime_ns>-<inode>``. Each write stamps its temp file with the current time in
nanoseconds, because on many kernels file timestamps are only as fine as a clock tick.

Errors about the caller's own files (``put_file``'s source, ``download``'s target) stay the ``OSError`` they
are: they are not the store's to translate.

A key cannot be both an object and a prefix of other keys here (``a`` and ``a/b``): such a write raises
``Conflict``, where GCS would accept it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import mimetypes
import os
import secrets
import shutil
import stat as stat_mode
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import BinaryIO

from common.errors import AppError, BadRequest, Conflict, NotFound, ServiceUnavailable
from common.storage import BlobInfo, SignedUpload, check_key, check_prefix, delete_listed

_CONTENT_TYPE_SUFFIX = "\\content-type"
_COPY_BUFFER_BYTES = 1024 * 1024
_CREATE_ATTEMPTS = 3


class LocalBlobStore:
    """Keep each object in a file under ``root``; see the module docstring for the layout."""

    def __init__(self, root: str):
        self._root = os.path.realpath(root)

    def put(self, key: str, data: bytes, *, content_type: str | None = None) -> BlobInfo:
        """Write ``data`` at ``key`` atomically, replacing any previous object."""
        return self._write(key, content_type, lambda target: target.write(data))

    def put_file(self, key: str, path: str, *, content_type: str | None = None) -> BlobInfo:
        """Stream the local file at ``path`` to ``key`` atomically, without reading it into memory."""
        self._path(key)  # refuse a bad key before touching the caller's file
        with open(path, "rb") as source:
            return self._write(key, content_type, lambda target: shutil.copyfileobj(source, target, _COPY_BUFFER_BYTES))

    def get(self, key: str) -> bytes:
        """Return the whole object."""
        path = self._path(key)
        with _translated(key), open(path, "rb") as source:
            return source.read()

    def open(self, key: str) -> BinaryIO:
        """Open the object for streaming reads; the caller closes it."""
        path = self._path(key)
        with _translated(key):
            return open(path, "rb")

    def download(self, key: str, path: str) -> None:
        """Copy the object to the local file ``path``."""
        with self.open(key) as source, open(path, "wb") as target:
            shutil.copyfileobj(source, target, _COPY_BUFFER_BYTES)

    def signed_url(self, key: str, *, expires_at: dt.datetime, content_type: str) -> str | None:
        """None: local objects are served by the functions behind their own signed paths."""
        return None

    def upload_url(self, key: str, *, expires_at: dt.datetime, max_bytes: int) -> SignedUpload | None:
        """None: the datasets function receives local uploads behind its own signed path."""
        return None

    def local_path(self, key: str) -> str | None:
        """Return the object's file, which callers may read in place."""
        path = self._path(key)
        if not os.path.isfile(path):
            raise NotFound(f"no object at {key!r}")
        return path

    def stat(self, key: str) -> BlobInfo:
        """Return the object's size, update time, generation and content type."""
        path = self._path(key)
        with _translated(key):
            status = os.stat(path)
        if not stat_mode.S_ISREG(status.st_mode):
            raise NotFound(f"no object at {key!r}")
        return _info(key, path, status)

    def exists(self, key: str) -> bool:
        """Say whether an object exists at ``key``."""
        return os.path.isfile(self._path(key))

    def delete(self, key: str) -> None:
        """Remove the object, and the directories its removal leaves empty."""
        path = self._path(key)
        with _translated(key):
            os.unlink(path)
            _remove_if_present(path + _CONTENT_TYPE_SUFFIX)
            self._remove_empty_directories(os.path.dirname(path))

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object under ``prefix``; return how many were removed (0 when none)."""
        return delete_listed(self, prefix)

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        """Yield every object whose key starts with ``prefix``, ordered by key."""
        check_prefix(prefix)
        # Walk only the deepest directory the prefix names in full; the rest of the prefix filters keys.
        directory_key = prefix.rpartition("/")[0]
        top = self._path(directory_key) if directory_key else self._root
        with _translated(prefix):
            infos = [info for info in self._walk(top) if info.key.startswith(prefix)]
        # Sorting whole keys, not each directory, puts "a-b" before "a/b" as GCS does.
        return iter(sorted(infos, key=lambda info: info.key))

    def ping(self) -> None:
        """Raise ``ServiceUnavailable`` unless the root is a writable directory (created when missing)."""
        try:
            os.makedirs(self._root, exist_ok=True)
            with tempfile.TemporaryFile(dir=self._root):
                pass
        except OSError as error:
            raise ServiceUnavailable(f"local storage root is not writable: {error.strerror}") from error

    def _path(self, key: str) -> str:
        check_key(key)
        path = os.path.realpath(os.path.join(self._root, *key.split("/")))
        # A symlink inside the root could still lead out of it.
        if os.path.commonpath([self._root, path]) != self._root:
            raise BadRequest("invalid storage key")
        return path

    def _write(self, key: str, content_type: str | None, fill: Callable[[BinaryIO], object]) -> BlobInfo:
        path = self._path(key)
        content_type = content_type or _guess_content_type(key)
        with _translated(key, writing=True):
            status = _replace_atomically(path, fill)
            if content_type == _guess_content_type(key):
                _remove_if_present(path + _CONTENT_TYPE_SUFFIX)
            else:
                _replace_atomically(path + _CONTENT_TYPE_SUFFIX, lambda target: target.write(content_type.encode()))
        return BlobInfo(key, status.st_size, _mtime(status), _generation(status), content_type)

    def _walk(self, top: str) -> Iterator[BlobInfo]:
        for directory, _, names in os.walk(top):
            for name in names:
                path = os.path.join(directory, name)
                key = os.path.relpath(path, self._root).replace(os.sep, "/")
                if not _is_key(key):
                    continue
                try:
                    status = os.stat(path, follow_symlinks=False)
                except FileNotFoundError:  # deleted while we walked
                    continue
                if stat_mode.S_ISREG(status.st_mode):
                    yield _info(key, path, status)

    def _remove_empty_directories(self, directory: str) -> None:
        while directory != self._root:
            try:
                os.rmdir(directory)
            except OSError:  # not empty, or already gone
                return
            directory = os.path.dirname(directory)


def _replace_atomically(path: str, fill: Callable[[BinaryIO], object]) -> os.stat_result:
    """Fill a fresh temp file beside ``path``, make it durable, then rename it over ``path``."""
    temp_path = os.path.join(os.path.dirname(path), f"\\tmp-{secrets.token_hex(8)}")
    descriptor = _create_exclusively(temp_path)
    try:
        with os.fdopen(descriptor, "wb") as target:
            fill(target)
            target.flush()
            now = time.time_ns()
            os.utime(target.fileno(), ns=(now, now))
            os.fsync(target.fileno())
            status = os.fstat(target.fileno())
        os.replace(temp_path, path)
    except BaseException:
        _remove_if_present(temp_path)
        raise
    return status


def _create_exclusively(path: str) -> int:
    attempts_left = _CREATE_ATTEMPTS
    while True:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            # Mode 0o666 lets the umask decide, as for any file the process creates.
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileNotFoundError:
            # A concurrent delete removed the directory it had just emptied; make it again.
            attempts_left -= 1
            if not attempts_left:
                raise


def _info(key: str, path: str, status: os.stat_result) -> BlobInfo:
    return BlobInfo(key, status.st_size, _mtime(status), _generation(status), _stored_content_type(key, path))


def _stored_content_type(key: str, path: str) -> str:
    try:
        with open(path + _CONTENT_TYPE_SUFFIX, encoding="utf-8") as sidecar:
            return sidecar.read()
    except FileNotFoundError:
        return _guess_content_type(key)


def _guess_content_type(key: str) -> str:
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


def _mtime(status: os.stat_result) -> dt.datetime:
    seconds, nanoseconds = divmod(status.st_mtime_ns, 1_000_000_000)
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC) + dt.timedelta(microseconds=nanoseconds // 1000)


def _generation(status: os.stat_result) -> str:
    return f"{status.st_mtime_ns}-{status.st_ino}"


def _is_key(key: str) -> bool:
    try:
        check_key(key)
    except BadRequest:
        return False
    return True


def _remove_if_present(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


@contextlib.contextmanager
def _translated(key: str, *, writing: bool = False) -> Iterator[None]:
    """Raise filesystem errors as ``common.errors``; a write that clashes with a directory is a Conflict."""
    try:
        yield
    except OSError as error:
        raise _app_error(error, key, writing) from error


def _app_error(error: OSError, key: str, writing: bool) -> AppError:
    if error.errno == errno.ENAMETOOLONG:
        return BadRequest("storage key segment is too long for the local filesystem")
    if writing and isinstance(error, (FileExistsError, NotADirectoryError, IsADirectoryError)):
        return Conflict(f"storage key {key!r} clashes with an object or a prefix of other objects")
    if not writing and isinstance(error, (FileNotFoundError, NotADirectoryError, IsADirectoryError)):
        return NotFound(f"no object at {key!r}")
    return ServiceUnavailable(f"local storage failed: {error.strerror}")
