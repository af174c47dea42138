"""Deleting a session deletes what it made: its questions (jobs and result tables), its charts and its history.

A running question is cancelled first, so it stops before its next model call instead of writing into a
session that is going. What was derived goes before the session itself, so a delete that fails half-way can
be asked again and finishes the job (the session is still there to be found). Chart links, the v1 signed URLs
and the original frontend's, stop working with the chart: they read blobs that are gone. A PDF export is made
on request and never stored, so there is none to remove.
"""

from __future__ import annotations

import logging

from common import errors
from common.auth import Tenant
from common.ports import QuestionPorts
from common.services import query_jobs, sessions
from common.storage import keys

log = logging.getLogger("convoinsight.sessions")


def delete_session(deps: QuestionPorts, tenant: Tenant, session_id: str) -> dict[str, int]:
    """Delete a session with its questions, results, charts and turns; say how many of each went (404 if none)."""
    sessions.get_session(deps.metadata, tenant, session_id)
    return purge_session(deps, tenant, session_id)


def purge_session(deps: QuestionPorts, tenant: Tenant, session_id: str) -> dict[str, int]:
    """Delete whatever a session made, summary or not (a session whose only question failed has none)."""
    from common.services.pipeline import runner

    jobs = query_jobs.session_jobs(deps.metadata, tenant, session_id)
    for job in jobs:
        if not job.ended:
            runner.cancel(deps, tenant, job.query_id)
    charts = 0
    for chart in deps.charts.list(tenant, session_id=session_id):
        try:
            deps.charts.delete(tenant, chart.chart_id)
            charts += 1
        except errors.NotFound:
            continue
    for job in jobs:
        deps.blobs.delete_prefix(keys.question_prefix(tenant, job.query_id) + "/")
        query_jobs.delete_job(deps.metadata, tenant, job.query_id)
    try:
        turns = sessions.delete_session(deps.metadata, tenant, session_id)
    except errors.NotFound:
        turns = 0  # no summary: nothing was answered, so there are no turns either
    log.info("session %s deleted: %d questions, %d charts, %d turns", session_id, len(jobs), charts, turns)
    return {"turns": turns, "queries": len(jobs), "charts": charts}
