"""A question's progress as Server-Sent Events: resumable, kept alive, and ended before the function's timeout.

Events: ``progress`` (the job's status and stage states, each time they change), ``end`` (the job's whole view
once it has ended) and ``reconnect`` (the stream's time is up: connect again). Every event carries an ``id``
made of the job's revision when it was sent (the job's record grows a revision with every write), so a client
that reconnects with ``Last-Event-ID`` gets only what changed after it: no event is lost (each one is a
snapshot of everything so far) and none is repeated. A ``: ping`` comment keeps an idle connection open
through proxies. The stream ends itself after ``EVENTS_STREAM_SECONDS``, below the function's timeout, with a
``reconnect`` event and a ``retry`` hint, instead of being cut by the platform mid-event.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from common.auth import Tenant
from common.ports import QuestionPorts
from common.services import query_jobs
from common.services.pipeline import views

POLL_SECONDS = 0.25
PING_SECONDS = 15.0
RECONNECT_MS = 1000


def event_id(revision: int) -> str:
    """The id of the event sent at this revision of the job."""
    return str(revision)


def after_revision(last_event_id: str | None) -> int:
    """The revision a reconnecting client has seen (0: none; an id this stream never sent counts as none)."""
    head = (last_event_id or "").strip().split(":", 1)[0]
    return int(head) if head.isdigit() and len(head) < 19 else 0


def stream(deps: QuestionPorts, tenant: Tenant, query_id: str, *, last_event_id: str | None = None,
           seconds: float, ping_seconds: float = PING_SECONDS,
           sleep: Callable[[float], None] = time.sleep) -> Iterator[str]:
    """Yield the question's events as SSE text, from after ``last_event_id`` until it ends or time is up."""
    seen = after_revision(last_event_id)
    last_state: dict[str, Any] | None = None
    deadline = time.monotonic() + seconds
    quiet_since = time.monotonic()
    yield f"retry: {RECONNECT_MS}\n\n"
    while True:
        job = query_jobs.get_job(deps.metadata, tenant, query_id)
        if job.revision > seen:
            view = views.job_view(deps, tenant, job)
            state = {"status": view["status"], "stages": view["stages"]}
            if state != last_state:
                yield _event("progress", job.revision, state)
                last_state, quiet_since = state, time.monotonic()
            if job.ended:
                yield _event("end", job.revision, view)
                return
            seen = job.revision
        elif job.ended:
            return  # the client has every event already, the end included
        if time.monotonic() >= deadline:
            yield f"event: reconnect\nid: {event_id(seen)}\ndata: {json.dumps({'retry_ms': RECONNECT_MS})}\n\n"
            return
        if time.monotonic() - quiet_since >= ping_seconds:
            yield ": ping\n\n"
            quiet_since = time.monotonic()
        sleep(POLL_SECONDS)


def _event(kind: str, revision: int, data: Any) -> str:
    return f"event: {kind}\nid: {event_id(revision)}\ndata: {json.dumps(data, default=str)}\n\n"
