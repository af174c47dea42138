"""Conversations past SESSION_RETENTION_DAYS are deleted whole by the cleanup function (issue 11, item 13):
questions, result tables, charts and history together; a conversation with no summary (its only question
failed) by its newest question; nothing younger; nothing at all when retention is 0."""

from __future__ import annotations

import datetime as dt

import pytest

from common.auth import Tenant
from common.services import query_jobs
from common.services.pipeline.job import JobRequest
from common.services.retention import expire_sessions
from common.storage import keys


@pytest.fixture
def talked(pipeline):
    pipeline.upload("sales")
    answered = pipeline.wait(pipeline.ask("Compare revenue by region")["query_id"])
    assert answered["status"] == "succeeded"
    # A conversation whose only question never finished: no summary, no turns; its job and results remain.
    query_jobs.create_job(pipeline.context.metadata, Tenant("alice"), query_id="q_orphan", session_id="s_orphan",
                          domain="sales", prompt="lost", request=JobRequest(model_id="scripted/model"),
                          now=pipeline.context.clock.now())
    pipeline.context.blobs.put(keys.question_prefix(Tenant("alice"), "q_orphan") + "/result.parquet", b"left")
    return pipeline, answered


def _blobs(context, prefix: str) -> list[str]:
    return [info.key for info in context.blobs.list(prefix)]


def test_idle_conversations_go_whole_and_younger_ones_stay(talked):
    pipeline, answered = talked
    context, now = pipeline.context, dt.datetime.now(dt.UTC)
    chart_id = answered["answer"]["chart"]["chart_id"]
    questions = keys.question_prefix(Tenant("alice"), "").rstrip("/")
    assert _blobs(context, "tenants/alice/charts")
    assert len({key.split("/")[3] for key in _blobs(context, questions)}) == 2  # the answered one and the orphan

    assert expire_sessions(context, now + dt.timedelta(days=29), retention_days=30)["expired_sessions"] == 0
    assert expire_sessions(context, now, retention_days=0)["expired_sessions"] == 0  # 0: kept forever
    dry = expire_sessions(context, now + dt.timedelta(days=31), retention_days=30, dry_run=True)
    assert dry["expired_sessions"] == 2
    assert pipeline.call("GET", f"/api/v1/sessions/{answered['session_id']}").status_code == 200

    assert expire_sessions(context, now + dt.timedelta(days=31), retention_days=30)["expired_sessions"] == 2
    assert pipeline.call("GET", f"/api/v1/sessions/{answered['session_id']}").status_code == 404
    assert pipeline.call("GET", f"/api/v1/queries/{answered['query_id']}").status_code == 404
    assert pipeline.call("GET", f"/api/v1/charts/{chart_id}").status_code == 404
    assert pipeline.call("GET", "/api/v1/queries/q_orphan").status_code == 404
    assert _blobs(context, "tenants/alice/charts") == [] and _blobs(context, questions) == []
    assert pipeline.call("GET", "/api/v1/datasets/sales/sales.csv").status_code == 200  # data is not a conversation


def test_the_cleanup_function_applies_the_setting(talked, function_apps):
    pipeline, _ = talked
    response = function_apps["cleanup"].test_client().post("/cleanup")
    assert response.get_json()["sessions"] == {"expired_sessions": 0, "retention_days": 0, "dry_run": False}
