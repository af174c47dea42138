"""Render charts in a bounded place: one long-lived child process (``worker``) that owns vl-convert.

A spec that slips past the policy can exhaust memory (vl-convert's engine then aborts its whole process) or
run for a long time. In the worker that costs one chart: over ``memory_mb`` the worker dies, past
``timeout_seconds`` it is killed, and either way the render raises ``ChartTooExpensive`` and the next render
starts a fresh worker. The server process never imports vl_convert.

One worker per renderer, started on the first render (~1 s: interpreter, vl-convert, a warm-up chart), reused
after (tens of ms a chart). Renders are serialised by a lock: a deployed instance serves one request at a
time, and a worker per thread would multiply the memory each one may use. A thread therefore waits at most
for the renders queued before it, each bounded by the timeout.
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import os
import re
import select
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from typing import IO, Any

from common import errors
from common.charts import worker
from common.charts.refusals import ChartSpecError, ChartTooExpensive

log = logging.getLogger("convoinsight.charts")

START_TIMEOUT_SECONDS = 60.0  # a cold instance with a fraction of a CPU takes seconds to start the engine
_WORKER = os.path.abspath(worker.__file__)
_renderers: weakref.WeakSet[ChartRenderer] = weakref.WeakSet()
_STACK_FRAME = re.compile(r"^\s+(/|\[0x)|^==== C stack trace")


class _WorkerGone(Exception):
    """The worker ended (or closed its output) before it replied."""


class ChartRenderer:
    """vl-convert in a child process with a memory limit and a per-render timeout; safe to share across threads."""

    def __init__(self, *, memory_mb: int, timeout_seconds: float,
                 start_timeout_seconds: float = START_TIMEOUT_SECONDS):
        if memory_mb < 1 or timeout_seconds <= 0:
            raise ValueError("memory_mb and timeout_seconds must be positive")
        self.memory_mb, self.timeout_seconds = memory_mb, timeout_seconds
        self.start_timeout_seconds = start_timeout_seconds
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._stderr: IO[bytes] | None = None
        self._ready: dict[str, Any] = {}
        _renderers.add(self)

    @property
    def worker_pid(self) -> int | None:
        """The running worker's process id, or None before the first render and after a worker ended."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def warm_up(self) -> None:
        """Start the worker now rather than on the first render."""
        with self._lock:
            self._started()

    def vegalite_version(self) -> str:
        """The Vega-Lite version the worker renders with."""
        with self._lock:
            self._started()
            return str(self._ready["vegalite_version"])

    def svg(self, spec: dict) -> str:
        """Return ``spec`` drawn as an SVG document."""
        return self._call({"op": "svg"}, _spec_bytes(spec), self.timeout_seconds).decode("utf-8")

    def png(self, spec: dict, scale: float = 2) -> bytes:
        """Return ``spec`` drawn as a PNG at ``scale`` (lowered when the image would be too large)."""
        return self._call({"op": "png", "scale": float(scale)}, _spec_bytes(spec), self.timeout_seconds)

    def bundle(self) -> str:
        """Return the Vega, Vega-Lite and vega-embed JavaScript (it depends on no spec; seconds to build)."""
        return self._call({"op": "bundle"}, b"", self.start_timeout_seconds).decode("utf-8")

    def close(self) -> None:
        """Stop the worker (the next render starts another)."""
        with self._lock:
            self._stop()

    def _call(self, request: dict, body: bytes, timeout: float) -> bytes:
        with self._lock:
            process = self._started()
            try:
                _send(process, worker.encode_frame(request, body))
                reply, payload = _read_frame(process, time.monotonic() + timeout)
            except TimeoutError:
                self._stop(reason=f"a render ran past {timeout:g} s")
                raise ChartTooExpensive(f"the chart took longer than {timeout:g} s to render: draw fewer marks, "
                                        "aggregate, or use simpler transforms") from None
            except (_WorkerGone, OSError, ValueError):
                ended = self._stop(reason="it ended during a render")
                raise ChartTooExpensive(f"the chart could not be rendered within the renderer's limits "
                                        f"({self.memory_mb} MB of memory; it stopped: {ended}): draw fewer marks "
                                        "or aggregate") from None
            if reply.get("retire"):
                self._stop(reason="it holds much of its memory budget after a render")
        if reply.get("ok"):
            return payload
        raise _reply_error(reply)

    def _started(self) -> subprocess.Popen:
        """The running worker, started (and waited for) if there is none; the caller holds the lock."""
        if self._process is not None and self._process.poll() is None:
            return self._process
        self._stop(reason="it had ended since the last render" if self._process is not None else "")
        cpu_seconds = math.ceil(4 * self.timeout_seconds) + 5  # V8 renders and collects on several threads
        self._stderr = tempfile.TemporaryFile(prefix="chart-worker-")
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-I", _WORKER, str(self.memory_mb), str(cpu_seconds)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, close_fds=True)
            self._ready, _ = _read_frame(self._process, time.monotonic() + self.start_timeout_seconds)
        except (TimeoutError, _WorkerGone, OSError, ValueError) as exc:
            ended = self._stop(reason="it did not start")
            raise errors.ServiceUnavailable(f"the chart renderer could not start ({ended})") from exc
        if not self._ready.get("memory_limited"):
            log.warning("chart renderer: this platform cannot limit the worker's memory (no RLIMIT_DATA)")
        return self._process

    def _stop(self, reason: str = "") -> str:
        """End the worker, if any; return how it ended. The caller holds the lock."""
        process, self._process = self._process, None
        if process is None:
            return "no worker"
        if process.poll() is None:
            process.kill()
        for stream in (process.stdin, process.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        try:
            code = process.wait(timeout=10)
            ended = f"signal {-code}" if code < 0 else f"exit status {code}"
        except subprocess.TimeoutExpired:
            ended = "still ending"
        if reason:
            log.warning("chart renderer: worker %s stopped (%s; %s)%s", process.pid, reason, ended,
                        _tail(self._stderr))
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        return ended


def _send(process: subprocess.Popen, frame: bytes) -> None:
    process.stdin.write(frame)  # type: ignore[union-attr]
    process.stdin.flush()  # type: ignore[union-attr]


def _spec_bytes(spec: dict) -> bytes:
    try:  # NaN passes, as it did when vl-convert took the dict itself
        return json.dumps(spec, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ChartSpecError(f"the chart spec is not plain JSON: {exc}") from None


def _reply_error(reply: dict) -> errors.AppError:
    message = str(reply.get("message") or "the chart could not be rendered")
    if reply.get("kind") == "too_expensive":
        return ChartTooExpensive(message)
    if reply.get("kind") == "spec":
        return ChartSpecError(message)
    log.error("chart renderer: %s", message)
    return errors.ServiceUnavailable("the chart renderer failed", code="CHART_RENDER_FAILED")


def _read_frame(process: subprocess.Popen, deadline: float) -> tuple[dict, bytes]:
    """Read one reply from the worker, raising ``TimeoutError`` at ``deadline``."""
    descriptor = process.stdout.fileno()  # type: ignore[union-attr]
    header_length, body_length = worker.frame_sizes(_read_exactly(descriptor, 8, deadline))
    header = json.loads(_read_exactly(descriptor, header_length, deadline))
    return header, _read_exactly(descriptor, body_length, deadline)


def _read_exactly(descriptor: int, size: int, deadline: float) -> bytes:
    chunks, remaining = [], size
    while remaining:
        wait = deadline - time.monotonic()
        if wait <= 0 or not select.select([descriptor], [], [], wait)[0]:
            raise TimeoutError
        chunk = os.read(descriptor, min(remaining, 1 << 20))
        if not chunk:
            raise _WorkerGone
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _tail(stderr: IO[bytes] | None) -> str:
    """The end of what the worker wrote to stderr (V8's out-of-memory report, a traceback), for the log."""
    if stderr is None:
        return ""
    try:
        stderr.seek(max(stderr.seek(0, os.SEEK_END) - 8000, 0))
        lines = stderr.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    # V8's report ends in a C stack trace of library offsets, which says nothing about the chart.
    telling = [line.strip() for line in lines if line.strip(" #=") and not _STACK_FRAME.match(line)]
    return f": {' | '.join(telling)[-1000:]}" if telling else ""


def _kill_workers_at_exit() -> None:
    # Without the lock: a render in progress must not delay the exit; its worker would finish it for no one.
    for renderer in list(_renderers):
        process = renderer._process
        if process is not None and process.poll() is None:
            process.kill()


def _forget_workers_after_fork() -> None:
    # A forked child shares the parent's pipes: it must start its own worker, never talk to the parent's.
    for renderer in list(_renderers):
        renderer._lock = threading.Lock()
        renderer._process, renderer._stderr = None, None


atexit.register(_kill_workers_at_exit)
os.register_at_fork(after_in_child=_forget_workers_after_fork)
