"""The LLM client through the real LiteLLM call path, against the scripted provider (a test double)."""

from __future__ import annotations

import threading

import pytest

from common.clock import FakeClock, SystemClock
from common.errors import BadRequest, Conflict, UpstreamError
from common.llm.client import NO_KEY, Cancelled, LlmClient, LlmFailed
from common.llm.keys import Credentials
from tests.scripted_llm import (
    INPUT_COST_PER_TOKEN,
    OUTPUT_COST_PER_TOKEN,
    Fault,
    Reply,
    malformed_json,
    wrong_sql,
)

PRIMARY, FALLBACK, OTHER = "scripted/primary", "scripted/fallback", "scripted_alt/model"
TENANT = Credentials("tenant-a-key", "http://127.0.0.1:9/v1", "tenant")
MESSAGES = [{"role": "user", "content": "total sales by region?"}]


class Sleeps:
    """The client's injected sleep: records each backoff and moves the fake clock instead of waiting."""

    def __init__(self, clock: FakeClock):
        self.clock = clock
        self.seconds: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)
        self.clock.advance(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps(FakeClock())


def client(sleeps: Sleeps, **overrides) -> LlmClient:
    settings = {"timeout_seconds": 7.0, "max_retries": 2, "backoff_base_seconds": 1.0, "backoff_max_seconds": 20.0}
    return LlmClient(clock=sleeps.clock, sleep=sleeps, **{**settings, **overrides})


def test_an_answer_records_tokens_cost_and_latency(script):
    script.queue(PRIMARY, Reply("42", prompt_tokens=30, completion_tokens=7, delay_s=0.05))
    llm = LlmClient(clock=SystemClock(), timeout_seconds=7.0)
    reply = llm.complete(MESSAGES, model_id=PRIMARY, credentials=TENANT, params={"seed": 1},
                         response_format_json=True)
    assert (reply.text, reply.model, reply.prompt_tokens, reply.completion_tokens) == ("42", PRIMARY, 30, 7)
    assert reply.cost_usd == pytest.approx(30 * INPUT_COST_PER_TOKEN + 7 * OUTPUT_COST_PER_TOKEN)
    assert reply.cost_known
    assert reply.latency_ms >= 50
    assert [(r.model, r.ok) for r in reply.attempts] == [(PRIMARY, True)]
    [call] = script.calls
    assert (call.api_key, call.api_base, call.timeout) == ("tenant-a-key", "http://127.0.0.1:9/v1", 7.0)
    assert call.messages == MESSAGES
    assert call.params["seed"] == 1
    assert call.params["response_format"] == {"type": "json_object"}


def test_malformed_json_comes_back_as_text_for_the_caller_to_repair(script):
    script.queue(PRIMARY, malformed_json())
    reply = LlmClient().complete(MESSAGES, model_id=PRIMARY, credentials=TENANT, response_format_json=True)
    assert reply.text == malformed_json().text


def test_a_script_can_answer_from_the_messages(script):
    # How a SQL-repair loop is exercised: wrong SQL first, a fix once the error is sent back.
    script.respond(PRIMARY, lambda call: Reply("SELECT 1") if "error" in call.messages[-1]["content"]
                   else wrong_sql())
    llm = LlmClient()
    assert llm.complete(MESSAGES, model_id=PRIMARY, credentials=TENANT).text == wrong_sql().text
    repair = [*MESSAGES, {"role": "user", "content": "error: no_such_table does not exist"}]
    assert llm.complete(repair, model_id=PRIMARY, credentials=TENANT).text == "SELECT 1"


def test_a_malformed_fallback_id_is_refused_before_any_call(script):
    with pytest.raises(BadRequest):
        LlmClient().complete(MESSAGES, model_id=PRIMARY, credentials=TENANT, fallback_models=["no-provider"])
    assert script.calls == []


def test_an_unpriced_model_costs_zero_and_says_so(script):
    script.queue("scripted/unpriced", Reply("ok", prompt_tokens=100, completion_tokens=100))
    reply = LlmClient().complete(MESSAGES, model_id="scripted/unpriced", credentials=TENANT)
    assert (reply.cost_usd, reply.cost_known, reply.prompt_tokens) == (0.0, False, 100)


def test_rate_limits_are_retried_with_growing_jittered_backoff(script, sleeps):
    script.queue(PRIMARY, Fault("rate_limit"), Fault("rate_limit"), Reply("ok"))
    reply = client(sleeps).complete(MESSAGES, model_id=PRIMARY, credentials=TENANT)
    assert reply.text == "ok"
    assert [r.error_kind for r in reply.attempts] == ["rate_limit", "rate_limit", None]
    first, second = sleeps.seconds
    assert 1.0 <= first <= 2.0  # base * 2**0 plus up to one base of jitter
    assert 2.0 <= second <= 3.0  # base * 2**1 plus up to one base of jitter
    assert len(script.calls) == 3


def test_backoff_is_capped_and_jitter_varies(script, sleeps):
    for _ in range(10):
        script.queue(PRIMARY, Fault("server_error"), Fault("internal_error"), Reply("ok"))
        client(sleeps, backoff_base_seconds=2.0, backoff_max_seconds=3.0).complete(
            MESSAGES, model_id=PRIMARY, credentials=TENANT)
    assert all(2.0 <= s <= 3.0 for s in sleeps.seconds)
    assert len(set(sleeps.seconds)) > 1


def test_a_refused_key_fails_at_once_without_retry_or_fallback(script, sleeps):
    script.queue(PRIMARY, Fault("auth"))
    with pytest.raises(LlmFailed) as caught:
        client(sleeps).complete(MESSAGES, model_id=PRIMARY, credentials=TENANT, fallback_models=[FALLBACK])
    error = caught.value
    assert isinstance(error, UpstreamError) and error.status == 502 and error.code == "LLM_AUTH"
    assert "the provider refused the API key" in error.message and "tenant" in error.message
    assert len(script.calls) == 1 and sleeps.seconds == []
    assert [r.error_kind for r in error.attempts] == ["auth"]


def test_a_bad_request_is_not_retried(script, sleeps):
    script.queue(PRIMARY, Fault("bad_request"))
    with pytest.raises(LlmFailed) as caught:
        client(sleeps).complete(MESSAGES, model_id=PRIMARY, credentials=TENANT)
    assert caught.value.code == "LLM_BAD_REQUEST"
    assert len(script.calls) == 1 and sleeps.seconds == []


def test_when_the_primary_is_exhausted_the_fallback_answers(script, sleeps):
    script.queue(PRIMARY, Fault("server_error"), Fault("connection"), Fault("rate_limit"))
    script.queue(FALLBACK, Reply("from fallback", prompt_tokens=12, completion_tokens=3))
    reply = client(sleeps).complete(MESSAGES, model_id=PRIMARY, credentials=TENANT, fallback_models=[FALLBACK])
    assert (reply.text, reply.model) == ("from fallback", FALLBACK)
    assert [(r.model, r.ok, r.error_kind) for r in reply.attempts] == [
        (PRIMARY, False, "server_error"), (PRIMARY, False, "connection"), (PRIMARY, False, "rate_limit"),
        (FALLBACK, True, None)]
    assert reply.attempts[-1].cost_usd == pytest.approx(12 * INPUT_COST_PER_TOKEN + 3 * OUTPUT_COST_PER_TOKEN)
    # Same provider, same credentials.
    assert {call.api_key for call in script.calls} == {"tenant-a-key"}


def test_a_fallback_of_another_provider_is_skipped_without_its_own_credentials(script, sleeps):
    script.queue(PRIMARY, *[Fault("rate_limit")] * 3)
    with pytest.raises(LlmFailed) as caught:
        client(sleeps).complete(MESSAGES, model_id=PRIMARY, credentials=TENANT, fallback_models=[OTHER])
    error = caught.value
    assert error.code == "LLM_RATE_LIMITED" and "RateLimitError" in error.message and PRIMARY in error.message
    assert error.attempts[-1].model == OTHER and error.attempts[-1].error_kind == "skipped"
    assert script.calls_for(OTHER) == []  # the tenant's scripted key never went to scripted_alt


def test_a_fallback_of_another_provider_uses_the_credentials_resolved_for_it(script, sleeps):
    script.queue(PRIMARY, *[Fault("server_error")] * 3)
    script.queue(OTHER, Reply("alt"))
    alt = Credentials("alt-key", None, "server")
    reply = client(sleeps).complete(MESSAGES, model_id=PRIMARY, credentials=TENANT, fallback_models=[OTHER],
                                    credentials_for=lambda model: alt)
    assert (reply.text, reply.model, reply.cost_known) == ("alt", OTHER, True)
    assert script.calls_for(OTHER)[0].api_key == "alt-key"


def test_timeouts_end_as_llm_timeout_after_the_retries(script, sleeps):
    script.queue(PRIMARY, *[Fault("timeout")] * 3)
    with pytest.raises(LlmFailed) as caught:
        client(sleeps).complete(MESSAGES, model_id=PRIMARY, credentials=TENANT)
    assert caught.value.code == "LLM_TIMEOUT" and caught.value.status == 502
    assert len(script.calls) == 3 and len(sleeps.seconds) == 2
    assert all(call.timeout == 7.0 for call in script.calls)
    assert caught.value.details["attempts"][0] == {"model": PRIMARY, "error": "timeout", "detail": "Timeout"}


def test_a_cancelled_query_makes_no_call(script, sleeps):
    with pytest.raises(Cancelled) as caught:
        client(sleeps).complete(MESSAGES, model_id=PRIMARY, credentials=TENANT, cancelled=lambda: True)
    assert isinstance(caught.value, Conflict) and caught.value.code == "CANCELLED" and caught.value.status == 409
    assert script.calls == [] and caught.value.attempts == ()


def test_a_cancel_between_retries_stops_before_the_next_call(script, sleeps):
    script.queue(PRIMARY, Fault("rate_limit"), Reply("too late"))
    with pytest.raises(Cancelled) as caught:
        client(sleeps).complete(MESSAGES, model_id=PRIMARY, credentials=TENANT,
                                cancelled=lambda: bool(sleeps.seconds))
    assert len(script.calls) == 1
    assert [r.error_kind for r in caught.value.attempts] == ["rate_limit"]


def test_a_keyless_call_never_lets_litellm_pick_a_key_from_the_environment(script):
    script.queue(PRIMARY, Reply("ok"))
    LlmClient().complete(MESSAGES, model_id=PRIMARY, credentials=Credentials(None, "http://127.0.0.1:9", "none"))
    assert script.calls[0].api_key == NO_KEY


def test_params_cannot_override_the_key_or_the_model(script):
    with pytest.raises(ValueError, match="api_key"):
        LlmClient().complete(MESSAGES, model_id=PRIMARY, credentials=TENANT, params={"api_key": "other"})
    assert script.calls == []


def test_concurrent_tenants_each_reach_the_provider_with_their_own_key(script):
    tenants = [f"tenant-{i}" for i in range(8)]
    all_in_flight = threading.Barrier(len(tenants), timeout=30)

    def answer(call):
        all_in_flight.wait()  # every call is inside the provider at once before any answers
        return Reply(f"answer for {call.messages[0]['content']}")

    script.respond(PRIMARY, answer)
    llm = LlmClient(max_retries=0)
    replies: dict[str, str] = {}

    def ask(tenant: str) -> None:
        credentials = Credentials(f"key-of-{tenant}", f"http://{tenant}.local/v1", "request")
        replies[tenant] = llm.complete([{"role": "user", "content": tenant}], model_id=PRIMARY,
                                       credentials=credentials).text

    threads = [threading.Thread(target=ask, args=(tenant,)) for tenant in tenants]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert replies == {tenant: f"answer for {tenant}" for tenant in tenants}
    assert len(script.calls) == len(tenants)
    for call in script.calls:
        tenant = call.messages[0]["content"]
        assert (call.api_key, call.api_base) == (f"key-of-{tenant}", f"http://{tenant}.local/v1")
