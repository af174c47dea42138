"""Temporary files: one folder per request, under one root, so nothing a request writes outlives it.

Every temporary directory or file a request makes (``directory``, ``mkdtemp``, ``mkstemp``) goes inside its
request folder, ``<system temp>/convoinsight-scratch/<pid>-<random>/``, made on first use. The router opens
one per request (``request_folder``) and removes it when the response has been sent, or at once when there is
no response to send, whatever happened inside. A process killed in the middle leaves its folders behind,
named by its pid: ``sweep`` removes the folders of processes that no longer run, and any older than a day (a
pid can be reused); every instance sweeps when it starts, and so does the cleanup function. Outside a
request (a job, a test calling a service), temporaries go to a folder of the process's own.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator

log = logging.getLogger("convoinsight.scratch")

MAX_AGE_SECONDS = 24 * 3600


def root() -> str:
    """The folder every request folder lives in."""
    return os.path.join(tempfile.gettempdir(), "convoinsight-scratch")


class RequestFolder:
    """One request's folder: made when first asked for, removed (with all inside) by ``remove``."""

    def __init__(self) -> None:
        self._path: str | None = None
        self._lock = threading.Lock()

    def path(self) -> str:
        """The folder, made now if it does not exist (yet, or any more: a sweep removed an idle one)."""
        with self._lock:
            if self._path is None or not os.path.isdir(self._path):
                os.makedirs(root(), exist_ok=True)
                self._path = tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=root())
            return self._path

    def remove(self) -> None:
        """Remove the folder and everything in it; safe to call more than once."""
        with self._lock:
            path, self._path = self._path, None
        if path is not None:
            shutil.rmtree(path, ignore_errors=True)


_current: contextvars.ContextVar[RequestFolder | None] = contextvars.ContextVar("request_folder", default=None)
_process_folder = RequestFolder()  # outside a request: removed by the sweep once this process is gone


@contextlib.contextmanager
def request_folder(folder: RequestFolder) -> Iterator[RequestFolder]:
    """Make ``folder`` where this thread's temporaries go while inside; the caller removes it when done."""
    token = _current.set(folder)
    try:
        yield folder
    finally:
        _current.reset(token)


def _folder() -> str:
    return (_current.get() or _process_folder).path()


def directory(prefix: str) -> tempfile.TemporaryDirectory:
    """A temporary directory inside the request's folder, removed when its ``with`` block ends."""
    return tempfile.TemporaryDirectory(prefix=prefix, dir=_folder())


def mkdtemp(prefix: str) -> str:
    """A temporary directory inside the request's folder, removed with it (or by the caller, earlier)."""
    return tempfile.mkdtemp(prefix=prefix, dir=_folder())


def mkstemp(prefix: str, suffix: str = "") -> tuple[int, str]:
    """A temporary file inside the request's folder: (open descriptor, path)."""
    return tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=_folder())


def sweep(*, max_age_seconds: float = MAX_AGE_SECONDS) -> list[str]:
    """Remove the folders of processes that no longer run, and any older than ``max_age_seconds``; list them."""
    removed = []
    try:
        names = os.listdir(root())
    except FileNotFoundError:
        return removed
    for name in names:
        path = os.path.join(root(), name)
        try:
            age = time.time() - os.stat(path).st_mtime
        except FileNotFoundError:
            continue
        if not _owner_runs(name) or (age > max_age_seconds and not name.startswith(f"{os.getpid()}-")):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(name)
    if removed:
        log.info("removed %d temporary folders that killed or finished processes left", len(removed))
    return removed


def _owner_runs(name: str) -> bool:
    pid = name.split("-", 1)[0]
    if not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)  # signal 0 only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True
