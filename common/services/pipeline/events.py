"""A question's progress as Server-Sent Events: resumable, kept alive, and ended before the function's timeout.

Events: ``progress`` (the job's status and stage states, each time they change), ``answer_delta`` (``{"text":
...}``: the next piece of the answer while the model writes it; ``answer_restart`` says the pieces so far are
void because the model call is starting over), ``end`` (the job's whole view once it has ended: its answer is
the pieces joined) and ``reconnect`` (the stream's time is up: connect again).

Every event carries an ``id``: the job's revision when it was sent (the job's record grows a revision with every
write), then ``:<n>`` once n answer pieces have been sent. A client that reconnects with ``Last-Event-ID`` gets
only what came after it: no event is lost (a progress event is a snapshot of everything so far, and the pieces
are numbered) and none is repeated. A ``: ping`` comment keeps an idle connection open
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
from common.services import stalled_jobs
from common.services.pipeline import answer_stream, views
from common.services.pipeline.job import QueryJob

POLL_SECONDS = 0.1  # how often the answer's pieces are read (the cache: cheap)
JOB_POLL_SECONDS = 0.2  # how often the job is read (the metadata store: a paid read in the cloud)
PING_SECONDS = 15.0
RECONNECT_MS = 1000


def event_id(revision: int, pieces: int = 0) -> str:
    """The id of an event sent at this revision of the job, after this many answer pieces."""
    return f"{revision}:{pieces}" if pieces else str(revision)


def after_revision(last_event_id: str | None) -> int:
    """The revision a reconnecting client has seen (0: none; an id this stream never sent counts as none)."""
    return _id_parts(last_event_id)[0]


def after_pieces(last_event_id: str | None) -> int:
    """How many answer pieces a reconnecting client has seen."""
    return _id_parts(last_event_id)[1]


def _id_parts(last_event_id: str | None) -> tuple[int, int]:
    head, _, tail = (last_event_id or "").strip().partition(":")
    if not (head.isdigit() and len(head) < 19):
        return 0, 0
    return int(head), int(tail) if tail.isdigit() and len(tail) < 10 else 0


def stream(deps: QuestionPorts, tenant: Tenant, query_id: str, *, last_event_id: str | None = None,
           seconds: float, ping_seconds: float = PING_SECONDS,
           sleep: Callable[[float], None] = time.sleep) -> Iterator[str]:
    """Yield the question's events as SSE text, from after ``last_event_id`` until it ends or time is up."""
    seen, sent = after_revision(last_event_id), after_pieces(last_event_id)
    last_state: dict[str, Any] | None = None
    deadline = time.monotonic() + seconds
    quiet_since = time.monotonic()
    yield f"retry: {RECONNECT_MS}\n\n"
    job, job_read_at = None, 0.0
    while True:
        if job is None or time.monotonic() - job_read_at >= JOB_POLL_SECONDS:
            job, job_read_at = stalled_jobs.read_job(deps, tenant, query_id), time.monotonic()
        # Read after the job: every piece written before the job ended is here before its end event. Pieces
        # exist only once the answer's stage has begun, so the cache is not asked before.
        for piece in answer_stream.pieces(deps.cache, tenant, query_id, sent) if _answer_begun(job) else ():
            sent += 1
            kind, data = ("answer_restart", {}) if piece.get("restart") else ("answer_delta", {"text": piece["text"]})
            yield _event(kind, event_id(seen, sent), data)
            quiet_since = time.monotonic()
        if job.revision > seen:
            view = views.job_view(deps, tenant, job)
            if job.ended:  # the end holds the last progress too; one id per event, so a resume never skips it
                yield _event("end", event_id(job.revision, sent), view)
                return
            state = {"status": view["status"], "stages": view["stages"]}
            if state != last_state:
                yield _event("progress", event_id(job.revision, sent), state)
                last_state, quiet_since = state, time.monotonic()
            seen = job.revision
        elif job.ended:
            return  # the client has every event already, the end included
        if time.monotonic() >= deadline:
            yield f"event: reconnect\nid: {event_id(seen, sent)}\ndata: {json.dumps({'retry_ms': RECONNECT_MS})}\n\n"
            return
        if time.monotonic() - quiet_since >= ping_seconds:
            yield ": ping\n\n"
            quiet_since = time.monotonic()
        sleep(POLL_SECONDS)


def _answer_begun(job: QueryJob) -> bool:
    stage = job.stages.get("compile")
    return job.ended or (stage is not None and stage.state != "pending")


def _event(kind: str, event: str, data: Any) -> str:
    return f"event: {kind}\nid: {event}\ndata: {json.dumps(data, default=str)}\n\n"
