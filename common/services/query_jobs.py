"""Query jobs: the state of one question as it moves through the pipeline's stages.

A job is one metadata record (collection ``queries``) that every stage moves with compare-and-set, so a
duplicated or retried Cloud Task cannot run a stage twice: a stage is *claimed* (pending -> running, with a
lease) before any LLM call, and a delivery that finds its stage claimed, done or the job finished does
nothing. A claim whose worker died is taken over once its lease has expired. Cancel is a flag on the job,
seen by the next claim (and by each stage before each LLM call); a job that has finished ignores it, so a
cancel never lingers to kill a later question.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from typing import Any

from common import errors
from common.metadata import MetadataStore, Record, update_record

COLLECTION = "queries"
STAGES = ("plan", "manipulate", "visualize", "analyze", "compile")
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
_CAS_ATTEMPTS = 20


def new_query_id() -> str:
    """Return a fresh, URL-safe, unguessable query id."""
    return "q_" + secrets.token_urlsafe(12).replace("-", "x").replace("_", "y")


def create_job(metadata: MetadataStore, tenant_id: str, *, query_id: str, session_id: str, domain: str,
               prompt: str, request: dict[str, Any], now: dt.datetime, secrets: dict[str, str] | None = None) -> Record:
    """Store a new queued job; every stage starts pending. ``secrets`` (sealed) are dropped when it ends."""
    data = {
        "query_id": query_id, "session_id": session_id, "domain": domain, "prompt": prompt, "request": request,
        "status": "queued", "cancel_requested": False, "created": now.isoformat(),
        "stages": {stage: {"state": "pending"} for stage in STAGES},
        "usage": {"calls": [], "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0},
    }
    if secrets:
        data["secrets"] = secrets
    return metadata.put(COLLECTION, tenant_id, query_id, data, parent=session_id, expected_revision=None)


def get_job(metadata: MetadataStore, tenant_id: str, query_id: str) -> Record:
    """Return the job, or a 404 naming it (another tenant's job is not found either)."""
    try:
        return metadata.get(COLLECTION, tenant_id, query_id)
    except errors.NotFound:
        raise errors.NotFound(f"query {query_id!r} not found", code="QUERY_NOT_FOUND") from None


def update_job(metadata: MetadataStore, tenant_id: str, query_id: str,
               change: Callable[[dict[str, Any]], dict[str, Any] | None]) -> Record | None:
    """Apply ``change`` to the job with compare-and-set (see ``update_record``); a missing job is a 404."""
    try:
        return update_record(metadata, COLLECTION, tenant_id, query_id, change, attempts=_CAS_ATTEMPTS)
    except errors.NotFound:
        raise errors.NotFound(f"query {query_id!r} not found", code="QUERY_NOT_FOUND") from None


def claim_stage(metadata: MetadataStore, tenant_id: str, query_id: str, stage: str, *, now: dt.datetime,
                lease_seconds: float) -> Record | None:
    """Mark ``stage`` running for this caller; None when there is nothing to do (or the job was cancelled)."""
    claim = secrets.token_hex(8)

    def change(data: dict[str, Any]) -> dict[str, Any] | None:
        if data["status"] in TERMINAL:
            return None
        if data["cancel_requested"]:
            return _cancelled(data, now)
        state = data["stages"][stage]
        lease_over = state.get("lease_until", "") < now.isoformat()
        if state["state"] != "pending" and not (state["state"] == "running" and lease_over):
            return None
        state.update(state="running", claim=claim, started_at=now.isoformat(),
                     lease_until=(now + dt.timedelta(seconds=lease_seconds)).isoformat())
        data["status"] = "running"
        return data

    record = update_job(metadata, tenant_id, query_id, change)
    if record is None or record.data["stages"][stage].get("claim") != claim:
        return None
    return record


def finish_stage(metadata: MetadataStore, tenant_id: str, query_id: str, stage: str, outputs: dict[str, Any], *,
                 now: dt.datetime, usage: list[dict[str, Any]] = (), skip: list[str] = ()) -> Record | None:
    """Mark ``stage`` done, store its outputs and LLM usage, and mark ``skip`` stages as not needed.

    Returns None when the job ended (or the stage was taken over) meanwhile.
    """

    def change(data: dict[str, Any]) -> dict[str, Any] | None:
        if data["status"] in TERMINAL or data["stages"][stage]["state"] != "running":
            return None
        data["stages"][stage].update(state="done", finished_at=now.isoformat())
        data.update(outputs)
        skip_stages(data, list(skip))
        _add_usage(data, usage)
        return data

    return update_job(metadata, tenant_id, query_id, change)


def skip_stages(data: dict[str, Any], stages: list[str]) -> None:
    """Mark stages the plan does not need as skipped (inside a ``change`` function)."""
    for stage in stages:
        if data["stages"][stage]["state"] == "pending":
            data["stages"][stage]["state"] = "skipped"


def finish_job(metadata: MetadataStore, tenant_id: str, query_id: str, status: str, *, now: dt.datetime,
               error: dict[str, Any] | None = None, usage: list[dict[str, Any]] = ()) -> Record | None:
    """Move the job to a terminal status (once); running stages end with it."""
    if status not in TERMINAL:
        raise ValueError(f"not a terminal status: {status}")

    def change(data: dict[str, Any]) -> dict[str, Any] | None:
        if data["status"] in TERMINAL:
            return None
        data.update(status=status, finished=now.isoformat())
        data.pop("secrets", None)  # a request's key is held only while its question runs
        if error:
            data["error"] = error
        for state in data["stages"].values():
            if state["state"] == "running":
                state.update(state="failed" if status == "failed" else status, finished_at=now.isoformat())
            elif state["state"] == "pending":
                state["state"] = "skipped" if status == "succeeded" else status
        _add_usage(data, usage)
        return data

    return update_job(metadata, tenant_id, query_id, change)


def release_stage(metadata: MetadataStore, tenant_id: str, query_id: str, stage: str) -> None:
    """Give a claimed stage back (after a transient failure) so the task's retry can claim it at once."""

    def change(data: dict[str, Any]) -> dict[str, Any] | None:
        if data["status"] in TERMINAL or data["stages"][stage]["state"] != "running":
            return None
        data["stages"][stage] = {"state": "pending"}
        return data

    update_job(metadata, tenant_id, query_id, change)


def request_cancel(metadata: MetadataStore, tenant_id: str, query_id: str, *, now: dt.datetime) -> Record:
    """Ask a job to stop: a queued job is cancelled at once, a running one at its next check."""

    def change(data: dict[str, Any]) -> dict[str, Any] | None:
        if data["status"] in TERMINAL or data["cancel_requested"]:
            return None
        if data["status"] == "queued":
            return _cancelled(data, now)
        data["cancel_requested"] = True
        return data

    return update_job(metadata, tenant_id, query_id, change) or get_job(metadata, tenant_id, query_id)


def is_cancel_requested(metadata: MetadataStore, tenant_id: str, query_id: str) -> bool:
    """Say whether the job should stop before its next LLM call."""
    data = get_job(metadata, tenant_id, query_id).data
    return data["cancel_requested"] or data["status"] == "cancelled"


def _cancelled(data: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    data.update(status="cancelled", finished=now.isoformat())
    data.pop("secrets", None)
    for state in data["stages"].values():
        if state["state"] in {"pending", "running"}:
            state.update(state="cancelled")
    return data


def _add_usage(data: dict[str, Any], calls: list[dict[str, Any]]) -> None:
    usage = data["usage"]
    for call in calls:
        usage["calls"].append(call)
        usage["prompt_tokens"] += int(call.get("prompt_tokens") or 0)
        usage["completion_tokens"] += int(call.get("completion_tokens") or 0)
        usage["cost_usd"] = round(usage["cost_usd"] + float(call.get("cost_usd") or 0.0), 8)
