"""A question whose model deployment is down, end to end: the first pays its attempts and opens the breaker,
the next fails at once (no model call, no redelivery by the queue) with DEPENDENCY_UNAVAILABLE."""

from __future__ import annotations

import time

import pytest

from tests.scripted_llm import Fault

THRESHOLD = 3  # one question's attempts (LLM_MAX_RETRIES=2): its planner call opens the breaker


@pytest.fixture
def extra_settings() -> dict:
    return {"breaker_failure_threshold": THRESHOLD, "breaker_reset_seconds": 60.0}


@pytest.fixture
def sales(pipeline):
    pipeline.upload("sales")
    return pipeline


def test_a_question_fails_at_once_once_its_models_breaker_is_open(sales, analyst):
    analyst.fail_next("planner", *[Fault("server_error")] * THRESHOLD)
    first = sales.wait(sales.ask("Compare revenue by region")["query_id"])
    assert first["status"] == "failed" and first["error"]["code"] == "LLM_UNAVAILABLE", first

    calls = len(analyst.calls)
    started = time.monotonic()
    second = sales.wait(sales.ask("Compare revenue by region")["query_id"])
    elapsed = time.monotonic() - started
    assert second["status"] == "failed" and second["error"]["code"] == "DEPENDENCY_UNAVAILABLE", second
    assert len(analyst.calls) == calls  # no model call was made
    assert elapsed < 1.0
    open_breakers = sales.call("GET", "/api/v1/health/ready").get_json()["open_breakers"]
    # The asking tenant's breaker for that deployment (another tenant's questions are not stopped by it), shown
    # to the unauthenticated readiness route without the tenant or the endpoint.
    assert [entry["dependency"] for entry in open_breakers] == ["model:scripted/model"]
