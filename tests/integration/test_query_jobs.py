"""Query jobs on a real metadata store: one claim per stage, leases, cancel without stale flags."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from common import errors
from common.auth import Tenant
from common.metadata.sql import SqlMetadataStore
from common.metadata.sql_engine import create_engine_for
from common.services import query_jobs as jobs
from common.services.pipeline.job import JobRequest, Plan

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
ALICE, BOB = Tenant("alice"), Tenant("bob")


@pytest.fixture
def store(tmp_path):
    return SqlMetadataStore(create_engine_for("", data_dir=str(tmp_path)))


def new_job(store, query_id="q1", session_id="s1"):
    return jobs.create_job(store, ALICE, query_id=query_id, session_id=session_id, domain="sales",
                           prompt="revenue by region", request=JobRequest(model_id="m"), now=NOW)


def test_a_stage_is_claimed_once(store):
    new_job(store)
    first = jobs.claim_stage(store, ALICE, "q1", "plan", now=NOW, lease_seconds=60)
    assert first is not None and first.status == "running"
    assert jobs.claim_stage(store, ALICE, "q1", "plan", now=NOW, lease_seconds=60) is None  # duplicate delivery


def test_concurrent_deliveries_claim_exactly_once(store):
    new_job(store)
    winners, barrier = [], threading.Barrier(8)

    def deliver():
        barrier.wait()
        if jobs.claim_stage(store, ALICE, "q1", "plan", now=NOW, lease_seconds=60):
            winners.append(1)

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1


def test_an_expired_lease_can_be_taken_over(store):
    new_job(store)
    jobs.claim_stage(store, ALICE, "q1", "plan", now=NOW, lease_seconds=60)
    later = NOW + dt.timedelta(seconds=61)
    assert jobs.claim_stage(store, ALICE, "q1", "plan", now=later, lease_seconds=60) is not None


def test_finishing_records_outputs_and_usage_once(store):
    new_job(store)
    jobs.claim_stage(store, ALICE, "q1", "plan", now=NOW, lease_seconds=60)
    calls = [{"model": "m", "prompt_tokens": 100, "completion_tokens": 20, "cost_usd": 0.001}]
    done = jobs.finish_stage(store, ALICE, "q1", "plan", lambda job: setattr(job, "plan", Plan(need_visualizer=True)),
                             now=NOW, usage=calls)
    assert done.stages["plan"].state == "done" and done.plan == Plan(need_visualizer=True)
    assert done.usage.prompt_tokens == 100 and done.usage.cost_usd == 0.001
    assert jobs.finish_stage(store, ALICE, "q1", "plan", lambda job: None, now=NOW, usage=calls) is None
    assert jobs.get_job(store, ALICE, "q1").usage.prompt_tokens == 100


def test_cancel_of_a_queued_job_is_immediate(store):
    new_job(store)
    assert jobs.request_cancel(store, ALICE, "q1", now=NOW).status == "cancelled"
    assert jobs.claim_stage(store, ALICE, "q1", "plan", now=NOW, lease_seconds=60) is None


def test_cancel_of_a_running_job_is_seen_at_the_next_claim(store):
    new_job(store)
    jobs.claim_stage(store, ALICE, "q1", "plan", now=NOW, lease_seconds=60)
    jobs.request_cancel(store, ALICE, "q1", now=NOW)
    assert jobs.is_cancel_requested(store, ALICE, "q1")
    jobs.finish_stage(store, ALICE, "q1", "plan", lambda job: None, now=NOW)
    assert jobs.claim_stage(store, ALICE, "q1", "manipulate", now=NOW, lease_seconds=60) is None
    assert jobs.get_job(store, ALICE, "q1").status == "cancelled"


def test_cancel_after_the_end_changes_nothing_and_never_reaches_the_next_question(store):
    new_job(store)
    jobs.claim_stage(store, ALICE, "q1", "plan", now=NOW, lease_seconds=60)
    jobs.finish_job(store, ALICE, "q1", "succeeded", now=NOW)
    assert jobs.request_cancel(store, ALICE, "q1", now=NOW).status == "succeeded"
    new_job(store, query_id="q2")  # same session, next question
    assert jobs.claim_stage(store, ALICE, "q2", "plan", now=NOW, lease_seconds=60) is not None


def test_finishing_twice_keeps_the_first_outcome(store):
    new_job(store)
    jobs.claim_stage(store, ALICE, "q1", "plan", now=NOW, lease_seconds=60)
    assert jobs.finish_job(store, ALICE, "q1", "failed", now=NOW, error={"code": "X", "message": "m"})
    assert jobs.finish_job(store, ALICE, "q1", "succeeded", now=NOW) is None
    job = jobs.get_job(store, ALICE, "q1")
    assert job.status == "failed" and job.stages["plan"].state == "failed"


def test_another_tenants_job_is_not_found(store):
    new_job(store)
    with pytest.raises(errors.NotFound):
        jobs.get_job(store, BOB, "q1")
    with pytest.raises(errors.NotFound):
        jobs.request_cancel(store, BOB, "q1", now=NOW)
