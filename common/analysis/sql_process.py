"""Runs one SQL query's work in its own process, whose memory the kernel caps and whose time a deadline ends.

Why a process: DuckDB's ``memory_limit`` bounds its buffer manager only ("This limit only applies to the buffer
manager", duckdb.org/docs/stable/operations_manual/limits). Strings and lists built while an expression is
evaluated, aggregate states (``string_agg``, ``list``) and some functions' work space (the
``damerau_levenshtein`` matrix) are allocated beside it: under a 1024 MB limit, ``length(repeat('x',
2000000000))`` grew the server by 3.8 GB and ``len(range(300000000))`` by 14.6 GB. No list of functions is
complete (concatenation in a recursive CTE doubles a value at each step; ``format`` and ``printf`` pad to any
width), so the bound is on the process: ``RLIMIT_DATA`` caps its heap and private mappings, an allocation past
the cap fails, DuckDB reports it as out of memory, and all the process's memory is returned when it ends. And
DuckDB checks for an interrupt between vectors, never inside one function call (``len(range(300000000))`` ran
171 s past a 60 s timeout), so at the deadline the process is killed.

The processes fork from a launcher process that imported DuckDB and PyArrow and opened one database once
(started by the first query, about 0.5 s); a query then costs a fork and a pickled round trip, 30-90 ms more
than in process on a busy 2-core VM. Forking the serving process itself would be
unsafe (it runs threads), and multiprocessing's ``forkserver`` re-runs the server's ``__main__`` script in
every child (CPython never passes it the main path to preload). The launcher is single-threaded, holds one end
of a socket pair whose other end only this process has, and exits when that closes. Each query gets a socket
pair of its own, passed to the launcher (SCM_RIGHTS) and inherited by the forked child. The cap needs Linux
(``RLIMIT_DATA`` covers ``mmap`` since Linux 4.7); elsewhere the process is not capped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from common import errors

# Imported once by the launcher rather than by every query's process; then WARM_UP (module, function) runs once.
PRELOAD = ("duckdb", "pyarrow", "pyarrow.dataset", "common.analysis.sql_engine")
WARM_UP = ("common.analysis.sql_engine", "warm_up")


class ProcessTimedOut(Exception):
    """The process had not answered by the deadline, and was killed."""


class ProcessDied(Exception):
    """The process ended without answering (killed by the kernel, or crashed)."""


class NoSlot(Exception):
    """The instance ran its ``slots`` processes at once until the deadline: this one never started."""


def run_capped(target: Callable[..., Any], args: tuple, *, memory_bytes: int, timeout_seconds: float,
               slots: int | None = None) -> Any:
    """Run ``target(*args)`` in a fresh process that may allocate ``memory_bytes`` more than it starts with.

    With ``slots``, at most that many such processes run at once in this instance (each may take its whole cap,
    so their number is what bounds the instance's memory); one more waits for a slot within its own deadline.
    Return its value, or raise what it raised (an ``AppError``), ``ProcessTimedOut``, ``ProcessDied`` or
    ``NoSlot``.
    """
    deadline = time.monotonic() + timeout_seconds
    if slots is None:
        return _run(target, args, memory_bytes, deadline)
    slot = _slots_for(slots)
    if not slot.acquire(timeout=max(0.0, deadline - time.monotonic())):
        raise NoSlot()
    try:
        return _run(target, args, memory_bytes, deadline)
    finally:
        slot.release()


_slots: dict[int, threading.BoundedSemaphore] = {}
_slots_lock = threading.Lock()


def _slots_for(count: int) -> threading.BoundedSemaphore:
    with _slots_lock:
        if count not in _slots:
            _slots[count] = threading.BoundedSemaphore(count)
        return _slots[count]


def _run(target: Callable[..., Any], args: tuple, memory_bytes: int, deadline: float) -> Any:
    from multiprocessing.connection import Connection

    channel = Connection(_LAUNCHER.fork_child().detach())
    try:
        pid = _receive(channel, deadline)  # the first message: the process is there, and who it is
        if pid is _LATE:
            raise ProcessTimedOut()  # not forked in time; once it is, it reads end-of-file and ends
        channel.send((target, args, memory_bytes))
        outcome = _receive(channel, deadline)
        if outcome is _LATE:
            with contextlib.suppress(ProcessLookupError):  # no answer nor end-of-file: alive, and only this kills it
                os.kill(pid, signal.SIGKILL)
            raise ProcessTimedOut()
    except (EOFError, OSError):
        raise ProcessDied() from None
    finally:
        channel.close()
    return _unpacked(outcome)


_LATE = object()


def _receive(channel: Any, deadline: float) -> Any:
    """The next message, or ``_LATE`` when none came before the deadline (EOFError when the process ended)."""
    if not channel.poll(max(0.0, deadline - time.monotonic())):
        return _LATE
    return channel.recv()


def _unpacked(outcome: tuple) -> Any:
    kind, *payload = outcome
    if kind == "value":
        return payload[0]
    if kind == "app_error":
        error_class, message, code, details = payload
        raise error_class(message, code=code, details=details)
    raise RuntimeError(f"the query's process failed:\n{payload[0]}")


class _Launcher:
    """The launcher process of this instance, started on first use and again if it ever dies."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._control: socket.socket | None = None
        self._process: subprocess.Popen | None = None

    def fork_child(self) -> socket.socket:
        """Have the launcher fork a query process; return this side of its socket pair."""
        ours, theirs = socket.socketpair()  # the query's own channel
        try:
            with self._lock:
                for attempt in range(2):
                    try:
                        socket.send_fds(self._running(), [b"q"], [theirs.fileno()])
                        break
                    except OSError:  # the launcher died (the kernel's OOM killer?): start another, once
                        self._forget()
                        if attempt:
                            raise
        finally:
            theirs.close()
        return ours

    def _running(self) -> socket.socket:
        if self._control is None:
            # Packets, so each request and the descriptor it carries arrive alone.
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            code = (f"import sys; sys.path[:0] = {sys.path!r}; "
                    f"from common.analysis.sql_process import serve; serve({theirs.fileno()})")
            self._process = subprocess.Popen([sys.executable, "-c", code], pass_fds=[theirs.fileno()],
                                             stdin=subprocess.DEVNULL)
            theirs.close()
            self._control = ours
        return self._control

    def _forget(self) -> None:
        if self._control is not None:
            self._control.close()
        if self._process is not None:
            self._process.poll()  # reap it
        self._control = self._process = None


_LAUNCHER = _Launcher()


def serve(control_fd: int) -> None:
    """The launcher's loop: fork one query process per socket received, until the instance closes its end."""
    import importlib

    # PyArrow's bundled jemalloc starts a background thread on import; forking is only safe single-threaded.
    os.environ["JE_ARROW_MALLOC_CONF"] = "background_thread:false"
    for module in PRELOAD:
        importlib.import_module(module)
    getattr(importlib.import_module(WARM_UP[0]), WARM_UP[1])()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the children: no zombies, no waiting
    control = socket.socket(fileno=control_fd)
    while True:
        message, fds, _, _ = socket.recv_fds(control, 16, 1)
        if not message:
            return  # the instance is gone
        if not fds:
            continue
        if os.fork() == 0:
            control.close()
            _child(fds[0])
        os.close(fds[0])


def _child(fd: int) -> None:
    """In the query's process: say who it is, then answer the one request it gets."""
    from multiprocessing.connection import Connection

    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    channel = Connection(fd)
    try:
        channel.send(os.getpid())
        channel.send_bytes(_answer(channel.recv_bytes()))
    finally:
        os._exit(0)  # nothing of the launcher's to clean up: its state is not this process's


def _answer(request: bytes) -> bytes:
    """Cap the memory, run the request's target; return the pickled value, AppError or crash."""
    import pickle

    try:
        target, args, memory_bytes = pickle.loads(request)
        _cap_data_segment(memory_bytes)
        outcome: tuple = ("value", target(*args))
    except errors.AppError as exc:
        outcome = ("app_error", type(exc), exc.message, exc.code, exc.details)
    except BaseException:  # noqa: BLE001 - anything else is a fault of ours, reported to the instance as one
        outcome = ("crash", traceback.format_exc())
    try:
        return pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - an answer that cannot be pickled is a fault of ours too
        return pickle.dumps(("crash", traceback.format_exc()))


def _cap_data_segment(extra_bytes: int) -> None:
    """Let the heap and private mappings grow by ``extra_bytes`` from their size now, and no further."""
    import resource

    current = _vm_data_bytes()
    if current is None:
        return  # not Linux: RLIMIT_DATA would not cover mmap there anyway
    cap = current + extra_bytes
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))


def _vm_data_bytes() -> int | None:
    with contextlib.suppress(OSError), open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024
    return None
