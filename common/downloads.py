"""A result file as an HTTP download: named after what it answers, said what it holds, and one of few at once.

The file is named after the question (or the domain): the text in NFC, without control or format characters
(a right-to-left override could disguise an extension), without the characters Windows refuses in a name
(``<>:"/\\|?*``), spaces collapsed, at most ``MAX_NAME_CHARS`` characters, never a Windows device name. The
``Content-Disposition`` is an attachment whose ``filename`` is an ASCII rendering of that name (accents
dropped, ``result`` if nothing is left) and, when the name is not ASCII, whose ``filename*`` is the name
itself, UTF-8 and percent-encoded (RFC 5987/6266). ``X-Result-Rows`` says how many rows the file holds and
``X-Result-Truncated`` whether a request's ``limit`` cut the result (a result over the download budget is
refused with 413 before any byte instead: CSV has no trailer to say so afterwards).

Each download holds a SQL process (SQL_MEMORY_LIMIT_MB + 256 MB) and then a file of up to
RESULT_DOWNLOAD_MAX_BYTES in the request's temporary folder (memory, on Cloud Run) until it is sent, so an
instance serves at most RESULT_DOWNLOAD_CONCURRENCY at once: one more waits up to ``SLOT_WAIT_SECONDS`` for a
slot, then is refused with 503 ``DOWNLOADS_BUSY``. The slot is given back when the response is closed (sent,
or the client gone).
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Callable, Iterator
from urllib.parse import quote

import flask

from common import errors
from common.analysis.export_formats import FORMATS
from common.services.result_download import ResultDownload

MAX_NAME_CHARS = 80
SLOT_WAIT_SECONDS = 10.0
CHUNK_BYTES = 256 * 1024
_REFUSED_BY_WINDOWS = re.compile(r'[<>:"/\\|?*]')
_DEVICE_NAMES = frozenset({"con", "prn", "aux", "nul", *(f"com{n}" for n in range(1, 10)),
                           *(f"lpt{n}" for n in range(1, 10))})
_slots_lock = threading.Lock()
_slots: dict[int, threading.BoundedSemaphore] = {}


def send_result(concurrency: int, produce: Callable[[], ResultDownload]) -> flask.Response:
    """Run ``produce`` in one of the instance's ``concurrency`` download slots; send its file as a download."""
    slot = _slots_for(concurrency)
    if not slot.acquire(timeout=SLOT_WAIT_SECONDS):
        raise errors.ServiceUnavailable(f"{concurrency} downloads are being prepared on this instance; try again in "
                                        "a few seconds", code="DOWNLOADS_BUSY")
    release = _once(slot.release)
    try:
        response = file_response(produce(), on_end=release)
    except BaseException:
        release()
        raise
    response.call_on_close(release)  # the client gone before the end: the server closes the response
    return response


def file_response(download: ResultDownload, *, on_end: Callable[[], None] = lambda: None) -> flask.Response:
    """The download's file as an attachment, streamed from disk, with its rows said in headers; ``on_end`` is
    called once the file is sent (or abandoned)."""
    exported = download.exported
    content_type, extension = FORMATS[exported.fmt]
    response = flask.Response(_chunks(exported.path, on_end), content_type=content_type, direct_passthrough=True)
    response.headers["Content-Length"] = str(exported.size)
    response.headers["Content-Disposition"] = content_disposition(attachment_name(download.title, extension))
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Result-Rows"] = str(exported.rows)
    response.headers["X-Result-Truncated"] = "true" if exported.truncated else "false"
    return response


def _chunks(path: str, on_end: Callable[[], None]) -> Iterator[bytes]:
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK_BYTES):
                yield chunk
    finally:
        on_end()


def _once(action: Callable[[], None]) -> Callable[[], None]:
    """``action``, made to run at most once however often it is called (the end of the file, then the close)."""
    lock, done = threading.Lock(), []

    def run_once() -> None:
        with lock:
            if done:
                return
            done.append(True)
        action()

    return run_once


def attachment_name(title: str, extension: str) -> str:
    """A safe file name for ``title`` (see the module docstring), with ``extension``."""
    return f"{_safe_stem(title)}.{extension}"


def content_disposition(name: str) -> str:
    """The ``Content-Disposition`` of an attachment named ``name`` (a name from ``attachment_name``)."""
    stem, dot, extension = name.rpartition(".")
    ascii_stem = _safe_stem(unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode("ascii"))
    header = f'attachment; filename="{ascii_stem}{dot}{extension}"'
    if not name.isascii():
        header += f"; filename*=UTF-8''{quote(name, safe='')}"
    return header


def _safe_stem(text: str) -> str:
    text = unicodedata.normalize("NFC", text)
    text = "".join(" " if unicodedata.category(char)[0] == "C" else char for char in text)
    text = " ".join(_REFUSED_BY_WINDOWS.sub(" ", text).split()).strip(" .")
    if len(text) > MAX_NAME_CHARS:
        cut = text[:MAX_NAME_CHARS]
        if text[MAX_NAME_CHARS] != " " and " " in cut[MAX_NAME_CHARS // 2:]:
            cut = cut.rsplit(" ", 1)[0]  # not in the middle of a word
        text = cut.strip(" .")
    if not text or text.split(".")[0].lower() in _DEVICE_NAMES:
        return "result" if not text else f"result {text}"
    return text


def _slots_for(concurrency: int) -> threading.BoundedSemaphore:
    with _slots_lock:
        if concurrency not in _slots:
            _slots[concurrency] = threading.BoundedSemaphore(concurrency)
        return _slots[concurrency]
