"""A question that stopped moving ends as failed (STALLED) when it is read or when cleanup runs, and a stage
whose last delivery cannot record its result ends its question rather than leaving it "running" for ever."""

from __future__ import annotations

import datetime as dt

import pytest

from common import bootstrap, errors
from common.auth import Tenant
from common.clock import FakeClock
from common.config import Settings
from common.services import query_jobs, stalled_jobs
from common.services.pipeline.job import JobRequest

ALICE = Tenant("alice")


@pytest.fixture
def fake_time(tmp_path):
    clock = FakeClock(dt.datetime(2026, 12, 5, 9, 0, tzinfo=dt.UTC))
    context = bootstrap.build(Settings.from_env({}, data_dir=str(tmp_path / "data")), clock=clock)
    bootstrap.use(context)
    yield context
    bootstrap.use(None)
    context.close()


def a_job(context, query_id: str = "q_stuck") -> None:
    query_jobs.create_job(context.metadata, ALICE, query_id=query_id, session_id="s1", domain="sales",
                          prompt="revenue by region", request=JobRequest(model_id="gemini/gemini-2.5-flash"),
                          now=context.clock.now())


def status(function_apps, query_id: str = "q_stuck") -> dict:
    answer = function_apps["queries"].test_client().get(f"/api/v1/queries/{query_id}", headers={"X-User-Id": "alice"})
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def test_a_job_unchanged_past_every_attempt_is_read_as_failed_stalled(function_apps, fake_time):
    a_job(fake_time)
    limit = stalled_jobs.stall_after(fake_time.settings).total_seconds()
    fake_time.clock.advance(limit - 1)
    assert status(function_apps)["status"] == "queued"  # slow is not stalled

    fake_time.clock.advance(2)
    ended = status(function_apps)

    assert ended["status"] == "failed" and ended["error"]["code"] == "STALLED", ended
    revision = query_jobs.get_job(fake_time.metadata, ALICE, "q_stuck").revision
    assert status(function_apps)["status"] == "failed"
    assert query_jobs.get_job(fake_time.metadata, ALICE, "q_stuck").revision == revision  # ended once


def test_cleanup_ends_the_stalled_jobs_nobody_reads_and_leaves_moving_ones(function_apps, fake_time):
    a_job(fake_time, "q_stuck")
    fake_time.clock.advance(stalled_jobs.stall_after(fake_time.settings).total_seconds() + 1)
    a_job(fake_time, "q_young")
    cleanup = function_apps["cleanup"].test_client()

    assert cleanup.post("/cleanup?dry_run=true").get_json()["questions"] == {"stalled_jobs": 1, "dry_run": True}
    assert query_jobs.get_job(fake_time.metadata, ALICE, "q_stuck").status == "queued"
    assert cleanup.post("/cleanup").get_json()["questions"]["stalled_jobs"] == 1

    assert query_jobs.get_job(fake_time.metadata, ALICE, "q_stuck").error["code"] == "STALLED"
    assert query_jobs.get_job(fake_time.metadata, ALICE, "q_young").status == "queued"
    assert cleanup.post("/cleanup").get_json()["questions"]["stalled_jobs"] == 0


def test_a_stage_that_can_never_record_its_result_ends_its_question(pipeline, monkeypatch):
    pipeline.upload("sales")
    refused = []

    def finish_stage(*args, **kwargs):
        refused.append(args[3])
        raise errors.ServiceUnavailable("metadata store is unavailable")

    monkeypatch.setattr(query_jobs, "finish_stage", finish_stage)
    body = pipeline.wait(pipeline.ask("Compare revenue by region")["query_id"], timeout=60)

    assert len(refused) == pipeline.context.settings.tasks_max_attempts  # every delivery, then no more
    assert body["status"] == "failed", body
    assert body["error"]["code"] == "UNAVAILABLE" and "stayed unavailable" in body["error"]["message"]
