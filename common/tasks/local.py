"""The task queue in one process: the local emulator's dispatcher (the contract is in ``common.tasks``).

A scheduler thread keeps every waiting attempt (delayed tasks and retries after a backoff) in a heap ordered by
due time and hands due attempts to a pool of workers, so a waiting task never occupies a worker. Due times come
from the injected clock. Nothing is persisted: stopping the process loses queued tasks, as a restarted
emulator should.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import heapq
import itertools
import logging
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from common.clock import Clock, SystemClock
from common.errors import ServiceUnavailable
from common.tasks import (
    ETA_HEADER,
    EXECUTION_COUNT_HEADER,
    QUEUE_NAME_HEADER,
    RETRY_COUNT_HEADER,
    TASK_NAME_HEADER,
    Task,
    check_task_name,
)

log = logging.getLogger("convoinsight.tasks")

Deliver = Callable[[str, bytes, dict[str, str]], int]
"""POST ``body`` with ``headers`` to ``path`` on the target; return the HTTP status (raising counts as a failure)."""

# A fake clock moves only when a test moves it. Re-reading the clock this often while a task waits lets the
# scheduler notice without a wake-up API, for the price of a few idle wake-ups.
_CLOCK_POLL_SECONDS = 0.05


def backoff_seconds(retry: int, *, min_backoff: float, max_backoff: float, jitter: float) -> float:
    """Return the wait before retry number ``retry`` (1 = the first): doubling from ``min_backoff``, capped."""
    # Up to +25% of jitter spreads the retries of tasks that failed together, yet each wait stays longer than
    # the one before (until the cap), so a struggling target is never hammered.
    return min(max_backoff, min_backoff * 2 ** (retry - 1) * (1 + 0.25 * jitter))


@dataclasses.dataclass(eq=False)
class _Entry:
    task: Task
    due: dt.datetime
    attempts: int = 0  # attempts made so far: the next attempt's retry count
    executions: int = 0  # attempts the handler answered without a 5xx, as Cloud Tasks counts them
    cancelled: bool = False


class LocalTaskQueue:
    """Deliver tasks through ``deliver`` from a thread pool, with retries, delays and de-duplication."""

    def __init__(self, deliver: Deliver, *, clock: Clock | None = None, queue_name: str = "local",
                 max_attempts: int = 5, min_backoff: float = 0.1, max_backoff: float = 10.0, workers: int = 4,
                 retention_seconds: float = 3600, max_names: int = 100_000,
                 jitter: Callable[[], float] = random.random):
        if max_attempts < 1 or workers < 1 or max_names < 1 or not 0 < min_backoff <= max_backoff:
            raise ValueError("need max_attempts, workers, max_names >= 1 and 0 < min_backoff <= max_backoff")
        self._deliver = deliver
        self._clock = clock or SystemClock()
        self._queue_name = queue_name
        self._max_attempts = max_attempts
        self._min_backoff, self._max_backoff = min_backoff, max_backoff
        self._retention = dt.timedelta(seconds=retention_seconds)
        self._max_names = max_names
        self._jitter = jitter
        self._cond = threading.Condition()
        self._heap: list[tuple[dt.datetime, int, _Entry]] = []
        self._order = itertools.count()  # breaks ties in the heap: equal due times run in enqueue order
        self._live: dict[str, _Entry] = {}  # tasks waiting, handed to a worker, or being retried
        self._recent: collections.OrderedDict[str, dt.datetime] = collections.OrderedDict()  # name -> ended at
        self._running = 0
        self._closed = False
        self._workers = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tasks-worker")
        # A daemon, so a queue nobody closed cannot keep the interpreter alive.
        self._scheduler = threading.Thread(target=self._schedule, name="tasks-scheduler", daemon=True)
        self._scheduler.start()

    def enqueue(self, task: Task) -> bool:
        """Queue ``task``; return False, creating nothing, when its name is taken (queued or recently used)."""
        with self._cond:
            if self._closed:
                raise ServiceUnavailable("the local task queue is closed")
            now = self._clock.now()
            self._forget_old_names(now)
            if task.name in self._live or task.name in self._recent:
                return False
            entry = _Entry(task, due=now + dt.timedelta(seconds=task.delay_seconds))
            self._live[task.name] = entry
            self._push(entry)
            return True

    def delete(self, name: str) -> None:
        """Drop the task if it has not started, and stop its retries if it has; no error when there is none."""
        check_task_name(name)
        with self._cond:
            entry = self._live.get(name)
            if entry is not None:
                entry.cancelled = True  # the scheduler and the worker skip a cancelled entry
                self._end(entry, "deleted")

    def ping(self) -> None:
        """Raise ``ServiceUnavailable`` when the queue is closed."""
        if self._closed or not self._scheduler.is_alive():
            raise ServiceUnavailable("the local task queue is closed")

    def drain(self, timeout: float) -> bool:
        """Wait until no task is queued, waiting or running; return False if ``timeout`` seconds pass first."""
        # The caller's patience is real time, not the clock's: a fake clock may never move.
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._live or self._running:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def close(self) -> None:
        """Stop: drop what has not started, let running attempts finish, end the threads."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            if self._live:
                log.warning("task queue closed with %d task(s) not delivered: %s", len(self._live),
                            ", ".join(sorted(self._live)))
            for entry in self._live.values():
                entry.cancelled = True
            self._live.clear()
            self._cond.notify_all()
        self._scheduler.join()
        self._workers.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> LocalTaskQueue:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def _schedule(self) -> None:
        with self._cond:
            while not self._closed:
                now = self._clock.now()
                while self._heap and self._heap[0][0] <= now:
                    entry = heapq.heappop(self._heap)[2]
                    if not entry.cancelled:
                        self._workers.submit(self._attempt, entry)
                wait = None
                if self._heap:
                    wait = min(_CLOCK_POLL_SECONDS, (self._heap[0][0] - now).total_seconds())
                self._cond.wait(wait)

    def _attempt(self, entry: _Entry) -> None:
        with self._cond:
            if entry.cancelled:
                return  # deleted while it waited for a worker
            self._running += 1
            headers = self._headers(entry)
        status = None
        try:
            status = self._deliver(entry.task.path, entry.task.body(), headers)
        except Exception:  # noqa: BLE001 - any failure to deliver is retried, as Cloud Tasks does
            log.warning("task %s: attempt %d could not be delivered", entry.task.name, entry.attempts + 1,
                        exc_info=True)
        with self._cond:
            self._running -= 1
            self._after_attempt(entry, status)
            self._cond.notify_all()

    def _after_attempt(self, entry: _Entry, status: int | None) -> None:
        entry.attempts += 1
        if status is not None and status < 500:
            entry.executions += 1
        if status is not None and 200 <= status < 300:
            self._end(entry, "delivered")
        elif entry.cancelled:
            return
        elif entry.attempts >= self._max_attempts:
            log.error("task %s: giving up after %d attempts (last status %s)", entry.task.name, entry.attempts,
                      status)
            self._end(entry, "failed")
        else:
            delay = backoff_seconds(entry.attempts, min_backoff=self._min_backoff, max_backoff=self._max_backoff,
                                    jitter=self._jitter())
            log.info("task %s: attempt %d got %s; retrying in %.2f s", entry.task.name, entry.attempts, status,
                     delay)
            entry.due = self._clock.now() + dt.timedelta(seconds=delay)
            self._push(entry)

    def _headers(self, entry: _Entry) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            TASK_NAME_HEADER: entry.task.name,
            QUEUE_NAME_HEADER: self._queue_name,
            RETRY_COUNT_HEADER: str(entry.attempts),
            EXECUTION_COUNT_HEADER: str(entry.executions),
            ETA_HEADER: f"{entry.due.timestamp():.6f}",
        }

    def _push(self, entry: _Entry) -> None:
        heapq.heappush(self._heap, (entry.due, next(self._order), entry))
        self._cond.notify_all()

    def _end(self, entry: _Entry, outcome: str) -> None:
        if self._live.get(entry.task.name) is not entry:
            return  # already ended: deleted while its attempt ran
        del self._live[entry.task.name]
        # The name stays taken for the retention window, counted from now, as in Cloud Tasks.
        self._recent[entry.task.name] = self._clock.now()
        self._recent.move_to_end(entry.task.name)
        while len(self._recent) > self._max_names:
            self._recent.popitem(last=False)
        log.debug("task %s %s", entry.task.name, outcome)
        self._cond.notify_all()

    def _forget_old_names(self, now: dt.datetime) -> None:
        # Names are appended as tasks end, so the oldest are first.
        while self._recent and next(iter(self._recent.values())) <= now - self._retention:
            self._recent.popitem(last=False)


def http_deliverer(base_url: str, *, timeout: float = 600) -> Deliver:
    """Return a ``Deliver`` that POSTs to ``base_url`` + path over HTTP (Cloud Tasks' default deadline: 10 min)."""
    base = base_url.rstrip("/")
    # No proxy from the environment (tasks go straight to the target) and no redirects (a 3xx is a failure,
    # as in Cloud Tasks, not a silent switch to GET without the body).
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())

    def deliver(path: str, body: bytes, headers: dict[str, str]) -> int:
        request = urllib.request.Request(base + path, data=body, headers=headers, method="POST")
        try:
            with opener.open(request, timeout=timeout) as response:
                return response.status
        except urllib.error.HTTPError as error:
            error.close()
            return error.code

    return deliver


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def wsgi_deliverer(app: Any) -> Deliver:
    """Return a ``Deliver`` that calls the WSGI ``app`` (e.g. the agents function) in process."""
    from werkzeug.test import Client

    def deliver(path: str, body: bytes, headers: dict[str, str]) -> int:
        response = Client(app).post(path, data=body, headers=headers,
                                    environ_base={"REMOTE_ADDR": "127.0.0.1"})
        try:
            return response.status_code
        finally:
            response.close()

    return deliver
