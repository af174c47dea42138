"""A model deployment's circuit breaker, through the real LiteLLM call path, against a loopback endpoint
(tests/outage_model_server.py) that starts failing and comes back."""

from __future__ import annotations

import time

import pytest

from common.breakers import BreakerRegistry
from common.errors import DependencyUnavailable
from common.llm.client import LlmClient, LlmFailed
from common.llm.keys import Credentials
from tests.outage_model_server import OutageModelServer

THRESHOLD, RESET = 3, 1.0
PRIMARY, FALLBACK = "openai/primary", "openai/fallback"
MESSAGES = [{"role": "user", "content": "total sales by region?"}]


@pytest.fixture
def server():
    with OutageModelServer(accepted_keys={"good-key"}) as server:
        yield server


@pytest.fixture
def breakers() -> BreakerRegistry:
    return BreakerRegistry(failure_threshold=THRESHOLD, reset_seconds=RESET)


def client(breakers: BreakerRegistry) -> LlmClient:
    # Two retries a model, with real (short) backoff: a down deployment costs three attempts before the breaker.
    return LlmClient(timeout_seconds=5.0, max_retries=2, backoff_base_seconds=0.05, backoff_max_seconds=0.2,
                     breakers=breakers)


def credentials(server: OutageModelServer, key: str = "good-key") -> Credentials:
    return Credentials(key, server.url, "tenant")


def deployment(server: OutageModelServer, model: str = PRIMARY) -> str:
    return f"model:{model}@{server.url}"


def test_a_failing_deployment_opens_its_breaker_then_fails_at_once_and_closes_when_back(server, breakers):
    llm = client(breakers)
    assert llm.complete(MESSAGES, model_id=PRIMARY, credentials=credentials(server)).text == "answer from primary"
    server.down.add("primary")
    with pytest.raises(LlmFailed) as first:
        llm.complete(MESSAGES, model_id=PRIMARY, credentials=credentials(server))
    assert first.value.code == "LLM_UNAVAILABLE" and server.requests["primary"] == 1 + THRESHOLD
    assert breakers.guard(deployment(server)).state == "open"

    started = time.monotonic()
    with pytest.raises(DependencyUnavailable) as refused:
        llm.complete(MESSAGES, model_id=PRIMARY, credentials=credentials(server))
    assert time.monotonic() - started < 1.0
    assert server.requests["primary"] == 1 + THRESHOLD  # no call went out
    assert refused.value.details["dependency"] == deployment(server) and refused.value.retry_after >= 1

    server.down.clear()
    time.sleep(RESET + 0.1)
    assert llm.complete(MESSAGES, model_id=PRIMARY, credentials=credentials(server)).text == "answer from primary"
    assert breakers.guard(deployment(server)).state == "closed"


def test_an_open_breaker_sends_a_question_straight_to_the_fallback_model(server, breakers):
    llm = client(breakers)
    server.down.add("primary")
    first = llm.complete(MESSAGES, model_id=PRIMARY, credentials=credentials(server), fallback_models=[FALLBACK])
    assert first.model == FALLBACK and server.requests["primary"] == THRESHOLD

    started = time.monotonic()
    reply = llm.complete(MESSAGES, model_id=PRIMARY, credentials=credentials(server), fallback_models=[FALLBACK])
    assert time.monotonic() - started < 1.0
    assert (reply.model, reply.text) == (FALLBACK, "answer from fallback")
    assert server.requests["primary"] == THRESHOLD  # the open deployment was skipped, and recorded as such
    assert [(record.model, record.error_kind) for record in reply.attempts] == [(PRIMARY, "skipped"),
                                                                                (FALLBACK, None)]


def test_a_refused_key_is_an_answer_and_never_opens_the_breaker(server, breakers):
    llm = client(breakers)
    for _ in range(THRESHOLD + 2):
        with pytest.raises(LlmFailed) as refused:
            llm.complete(MESSAGES, model_id=PRIMARY, credentials=credentials(server, "wrong-key"))
        assert refused.value.code == "LLM_AUTH"
    assert breakers.guard(deployment(server)).state == "closed"
    assert llm.complete(MESSAGES, model_id=PRIMARY, credentials=credentials(server)).text == "answer from primary"


def test_a_refused_connection_counts_as_an_outage(breakers):
    with OutageModelServer() as server:
        gone = Credentials("good-key", server.url, "tenant")
    llm = client(breakers)  # the server is closed: its port refuses connections
    with pytest.raises(LlmFailed) as first:
        llm.complete(MESSAGES, model_id=PRIMARY, credentials=gone)
    assert first.value.code == "LLM_UNAVAILABLE"
    with pytest.raises(DependencyUnavailable):
        llm.complete(MESSAGES, model_id=PRIMARY, credentials=gone)


def test_one_tenants_failures_open_only_that_tenants_breaker(server, breakers):
    """A tenant whose own calls fail (a crafted request that times out, say) must not stop everyone's questions."""
    import dataclasses

    llm = client(breakers)
    server.down.add("primary")
    mallory = dataclasses.replace(credentials(server), breaker_scope="mallory")
    with pytest.raises(LlmFailed):
        llm.complete(MESSAGES, model_id=PRIMARY, credentials=mallory)
    with pytest.raises(DependencyUnavailable):
        llm.complete(MESSAGES, model_id=PRIMARY, credentials=mallory)  # open for mallory
    server.down.discard("primary")
    alice = dataclasses.replace(credentials(server), breaker_scope="alice")
    assert llm.complete(MESSAGES, model_id=PRIMARY, credentials=alice).text == "answer from primary"
    assert breakers.guard(f"model:{PRIMARY}@{server.url} for mallory").state == "open"
