"""Streamed model calls: the text reaches a sink as the model writes it, with the client's retries, fallbacks,
cancels, accounting and bounds, through the real LiteLLM stream path against the scripted provider."""

from __future__ import annotations

import threading
import time
import types

import pytest

from common.clock import FakeClock
from common.llm import runtime
from common.llm.client import Cancelled, LlmClient, LlmFailed
from common.llm.keys import Credentials
from tests.scripted_llm import (
    INPUT_COST_PER_TOKEN,
    OUTPUT_COST_PER_TOKEN,
    Fault,
    Reply,
    pieces_of,
)

PRIMARY, FALLBACK = "scripted/primary", "scripted/fallback"
TENANT = Credentials("tenant-a-key", "http://127.0.0.1:9/v1", "tenant")
MESSAGES = [{"role": "user", "content": "total sales by region?"}]
ANSWER = "The total is 1,234 dollars, most of it from the north region in the second half of the year."


class Sink:
    """A TextSink that records what it was told, in order: ("write", text) or ("restart",)."""

    def __init__(self, on_write=None):
        self.events: list[tuple[str, ...]] = []
        self._on_write = on_write

    def write(self, text: str) -> None:
        self.events.append(("write", text))
        if self._on_write is not None:
            self._on_write(self)

    def restart(self) -> None:
        self.events.append(("restart",))

    @property
    def writes(self) -> list[str]:
        return [event[1] for event in self.events if event[0] == "write"]

    def text_since_restart(self) -> str:
        last = max((i for i, event in enumerate(self.events) if event[0] == "restart"), default=-1)
        return "".join(event[1] for event in self.events[last + 1:])


def client(**overrides) -> LlmClient:
    settings = {"clock": FakeClock(), "sleep": lambda _: None, "timeout_seconds": 7.0, "max_retries": 2}
    return LlmClient(**{**settings, **overrides})


def test_a_streamed_answer_reaches_the_sink_in_pieces_and_is_the_reply(script):
    script.queue(PRIMARY, Reply(ANSWER, prompt_tokens=30, completion_tokens=7))
    sink = Sink()
    reply = client().complete(MESSAGES, model_id=PRIMARY, credentials=TENANT, sink=sink, params={"seed": 1})
    assert sink.writes == pieces_of(ANSWER) and len(sink.writes) > 3
    assert reply.text == "".join(sink.writes) == ANSWER
    assert (reply.prompt_tokens, reply.completion_tokens, reply.cost_known) == (30, 7, True)
    assert reply.cost_usd == pytest.approx(30 * INPUT_COST_PER_TOKEN + 7 * OUTPUT_COST_PER_TOKEN)
    assert [(r.model, r.ok, r.prompt_tokens) for r in reply.attempts] == [(PRIMARY, True, 30)]
    [call] = script.calls
    assert call.stream and call.params["stream_options"] == {"include_usage": True}
    assert (call.api_key, call.api_base, call.timeout, call.params["seed"]) == ("tenant-a-key", TENANT.api_base, 7.0, 1)


def test_without_a_sink_the_call_does_not_stream(script):
    script.queue(PRIMARY, Reply(ANSWER))
    assert client().complete(MESSAGES, model_id=PRIMARY, credentials=TENANT).text == ANSWER
    [call] = script.calls
    assert not call.stream and "stream_options" not in call.params


def test_the_text_arrives_while_the_model_is_still_writing(script):
    # Five pieces, 0.3 s apart: the first is written 4 x 0.3 s before the call returns (a client that passed the
    # text on only at the end would write it all at once, just before returning).
    text = " ".join(f"word{i}" for i in range(15))
    script.queue(PRIMARY, Reply(text, chunk_delay_s=0.3))
    first_write: list[float] = []
    sink = Sink(on_write=lambda sink: first_write or first_write.append(time.monotonic()))
    reply = client().complete(MESSAGES, model_id=PRIMARY, credentials=TENANT, sink=sink)
    returned = time.monotonic()
    assert reply.text == text and len(sink.writes) == 5
    assert returned - first_write[0] >= 1.0


def test_a_retry_after_partial_text_restarts_the_sink(script):
    script.queue(PRIMARY, Fault("server_error", after_text="The total is 9"), Reply(ANSWER))
    sink = Sink()
    reply = client().complete(MESSAGES, model_id=PRIMARY, credentials=TENANT, sink=sink)
    restart = sink.events.index(("restart",))
    assert "".join(sink.writes[:restart]) == "The total is 9"
    assert reply.text == sink.text_since_restart() == ANSWER
    assert [(r.ok, r.error_kind) for r in reply.attempts] == [(False, "server_error"), (True, None)]
    assert reply.attempts[0].cost_usd == 0.0 and len(script.calls) == 2


def test_restart_comes_only_after_an_attempt_that_wrote_and_before_the_next_writes(script):
    script.queue(PRIMARY, Fault("rate_limit", after_text="first try"), Fault("rate_limit"),
                 Fault("connection", after_text="third try"))
    script.queue(FALLBACK, Reply("and this from the fallback"))
    sink = Sink()
    reply = client().complete(MESSAGES, model_id=PRIMARY, credentials=TENANT, fallback_models=[FALLBACK],
                              sink=sink)
    assert sink.events == [("write", "first try"), ("restart",), ("write", "third try"), ("restart",),
                           ("write", "and this from "), ("write", "the fallback")]
    assert (reply.text, reply.model) == ("and this from the fallback", FALLBACK)
    assert [(r.model, r.ok) for r in reply.attempts] == [
        (PRIMARY, False), (PRIMARY, False), (PRIMARY, False), (FALLBACK, True)]


def test_a_fault_before_any_text_needs_no_restart(script):
    script.queue(PRIMARY, Fault("rate_limit"), Reply("ok then"))
    sink = Sink()
    assert client().complete(MESSAGES, model_id=PRIMARY, credentials=TENANT, sink=sink).text == "ok then"
    assert sink.events == [("write", "ok then")]


def test_a_failure_after_partial_text_that_cannot_be_retried_ends_the_call(script):
    script.queue(PRIMARY, Fault("auth", after_text="The total"))
    sink = Sink()
    with pytest.raises(LlmFailed) as caught:
        client().complete(MESSAGES, model_id=PRIMARY, credentials=TENANT, fallback_models=[FALLBACK], sink=sink)
    assert caught.value.code == "LLM_AUTH"
    assert sink.events == [("write", "The total")]  # no attempt followed, so nothing to restart
    assert [(r.model, r.error_kind) for r in caught.value.attempts] == [(PRIMARY, "auth")]


def test_retries_exhausted_mid_stream_fail_like_any_other(script):
    script.queue(PRIMARY, *[Fault("server_error", after_text="partial")] * 3)
    sink = Sink()
    with pytest.raises(LlmFailed) as caught:
        client().complete(MESSAGES, model_id=PRIMARY, credentials=TENANT, sink=sink)
    assert caught.value.code == "LLM_UNAVAILABLE"
    assert [r.error_kind for r in caught.value.attempts] == ["server_error"] * 3
    assert sink.events == [("write", "partial"), ("restart",), ("write", "partial"), ("restart",),
                           ("write", "partial")]


def test_a_cancel_while_the_text_arrives_stops_the_stream(script):
    clock = FakeClock()
    cancel = threading.Event()

    def one_second_per_piece(sink: Sink) -> None:
        clock.advance(1.0)
        if len(sink.writes) == 3:
            cancel.set()

    script.queue(PRIMARY, Reply(" ".join(f"w{i}" for i in range(60)), completion_tokens=60))
    sink = Sink(on_write=one_second_per_piece)
    with pytest.raises(Cancelled) as caught:
        client(clock=clock).complete(MESSAGES, model_id=PRIMARY, credentials=TENANT, sink=sink,
                                     fallback_models=[FALLBACK], cancelled=cancel.is_set)
    assert len(sink.writes) == 3  # the next piece found the cancel
    assert [(r.model, r.ok, r.error_kind) for r in caught.value.attempts] == [(PRIMARY, False, "cancelled")]
    assert len(script.calls) == 1


def test_a_running_stream_asks_about_a_cancel_by_time_not_per_piece(script):
    clock = FakeClock()
    asked: list[int] = []

    def cancelled() -> bool:
        asked.append(1)
        return False

    script.queue(PRIMARY, Reply(" ".join(f"w{i}" for i in range(120))))  # 40 pieces, 0.1 s apart
    sink = Sink(on_write=lambda _: clock.advance(0.1))
    reply = client(clock=clock).complete(MESSAGES, model_id=PRIMARY, credentials=TENANT, sink=sink,
                                         cancelled=cancelled)
    assert len(sink.writes) == 40 and reply.text.endswith("w119")
    # Once before the attempt, then about every 0.5 s of the 4 s the pieces took: not 40 times.
    assert 4 <= len(asked) <= 10


def test_a_stream_of_too_many_pieces_fails_at_once_without_retry_or_fallback(script):
    script.queue(PRIMARY, Reply(" ".join(f"w{i}" for i in range(60))))  # 20 pieces
    sink = Sink()
    with pytest.raises(LlmFailed) as caught:
        client(max_stream_chunks=5).complete(MESSAGES, model_id=PRIMARY, credentials=TENANT,
                                             fallback_models=[FALLBACK], sink=sink)
    assert caught.value.code == "MODEL_REPLY_TOO_LARGE" and caught.value.status == 502
    assert [(r.model, r.error_kind, r.detail) for r in caught.value.attempts] == [
        (PRIMARY, "reply_too_large", "TooManyStreamChunks")]
    assert len(script.calls) == 1 and len(sink.writes) <= 5


def test_a_stream_within_the_piece_limit_is_read_whole(script):
    text = " ".join(f"w{i}" for i in range(30))  # 10 pieces, and LiteLLM's closing ones
    script.queue(PRIMARY, Reply(text))
    assert client(max_stream_chunks=20).complete(MESSAGES, model_id=PRIMARY, credentials=TENANT,
                                                 sink=Sink()).text == text


def test_streamed_text_past_the_reply_budget_in_utf8_bytes_fails_at_once(script):
    text = "éé " * 40  # 120 characters, 200 bytes of UTF-8
    script.queue(PRIMARY, Reply(text))
    sink = Sink()
    with pytest.raises(LlmFailed) as caught:
        client(max_reply_bytes=150).complete(MESSAGES, model_id=PRIMARY, credentials=TENANT,
                                             fallback_models=[FALLBACK], sink=sink)
    assert caught.value.code == "MODEL_REPLY_TOO_LARGE" and "LLM_MAX_REPLY_BYTES" in caught.value.message
    assert [(r.error_kind, r.detail) for r in caught.value.attempts] == [("reply_too_large", "ModelReplyTooLarge")]
    assert len(script.calls) == 1 and len("".join(sink.writes).encode()) <= 150

    script.queue(PRIMARY, Reply(text))
    assert client(max_reply_bytes=200).complete(MESSAGES, model_id=PRIMARY, credentials=TENANT,
                                                sink=Sink()).text == text


def test_a_stream_past_its_time_bound_times_out_and_is_retried_then_falls_back(script):
    clock = FakeClock()
    slow = " ".join(f"w{i}" for i in range(60))  # 20 pieces
    script.queue(PRIMARY, Reply(slow), Reply(slow))
    script.queue(FALLBACK, Reply("quick answer"))
    sink = Sink(on_write=lambda _: clock.advance(1.0))  # each piece arrives a second after the one before
    reply = client(clock=clock, max_retries=1, max_stream_seconds=5.0).complete(
        MESSAGES, model_id=PRIMARY, credentials=TENANT, fallback_models=[FALLBACK], sink=sink)
    # Pieces arrive 0, 1, ... 5 s after the request; the one at 6 s is past the bound and ends the attempt.
    first_six = [("write", piece) for piece in pieces_of(slow)[:6]]
    assert sink.events == [*first_six, ("restart",), *first_six, ("restart",), ("write", "quick answer")]
    assert (reply.text, reply.model) == ("quick answer", FALLBACK)
    assert [(r.model, r.ok, r.error_kind, r.detail, r.latency_ms) for r in reply.attempts] == [
        (PRIMARY, False, "timeout", "StreamTooSlow", 6000.0), (PRIMARY, False, "timeout", "StreamTooSlow", 6000.0),
        (FALLBACK, True, None, "", 1000.0)]
    assert len(script.calls) == 3


def test_a_stream_within_its_time_bound_is_read_whole(script):
    clock = FakeClock()
    text = " ".join(f"w{i}" for i in range(18))  # 6 pieces at 0 to 5 s, and the closing one (the usage) at 6 s
    script.queue(PRIMARY, Reply(text))
    sink = Sink(on_write=lambda _: clock.advance(1.0))
    reply = client(clock=clock, max_stream_seconds=6.0).complete(MESSAGES, model_id=PRIMARY, credentials=TENANT,
                                                                 sink=sink)
    assert reply.text == text and [r.ok for r in reply.attempts] == [True]


@pytest.mark.parametrize(("make", "bound"), [
    (lambda clock: client(clock=clock, max_retries=0), 28),  # 4 x the 7 s read timeout
    (lambda clock: client(clock=clock).one_shot(timeout_seconds=3), 3),  # its own timeout, not 4 x 3 s
], ids=["four-read-timeouts", "one-shot"])
def test_the_time_bound_defaults_to_four_read_timeouts_and_a_one_shot_keeps_to_its_timeout(script, make, bound):
    clock = FakeClock()
    script.queue(PRIMARY, Reply(" ".join(f"w{i}" for i in range(150))))  # 50 pieces, a second apart
    sink = Sink(on_write=lambda _: clock.advance(1.0))
    with pytest.raises(LlmFailed) as caught:
        make(clock).complete(MESSAGES, model_id=PRIMARY, credentials=TENANT, sink=sink)
    assert caught.value.code == "LLM_TIMEOUT" and caught.value.status == 502
    assert [(r.error_kind, r.detail) for r in caught.value.attempts] == [("timeout", "StreamTooSlow")]
    assert len(sink.writes) == bound + 1  # the pieces that arrived 0 to ``bound`` seconds after the request


def test_the_time_bound_counts_from_the_request_not_the_first_piece(script, monkeypatch):
    """A reply whose first piece took long to come has that much less time for the rest."""
    clock = FakeClock()

    def chunk(text: str):
        return types.SimpleNamespace(choices=[types.SimpleNamespace(delta=types.SimpleNamespace(content=text))])

    def pieces_a_second_apart():
        for i in range(10):
            yield chunk(f"piece {i} ")
            clock.advance(1.0)

    def completion(**kwargs):
        clock.advance(4.0)  # the endpoint took 4 s to answer the request
        return pieces_a_second_apart()

    monkeypatch.setattr(runtime.load_litellm(), "completion", completion)
    sink = Sink()
    with pytest.raises(LlmFailed) as caught:
        client(clock=clock, max_retries=0, max_stream_seconds=6.0).complete(MESSAGES, model_id=PRIMARY,
                                                                            credentials=TENANT, sink=sink)
    assert [r.detail for r in caught.value.attempts] == ["StreamTooSlow"]
    assert sink.writes == ["piece 0 ", "piece 1 ", "piece 2 "]  # at 4, 5 and 6 s; the next, at 7 s, is past 6 s


def test_the_time_bound_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        LlmClient(max_stream_seconds=0)


def test_without_usage_from_the_provider_the_tokens_are_counted(script):
    script.queue(PRIMARY, Reply(ANSWER, prompt_tokens=999, completion_tokens=999, stream_usage=False))
    reply = client().complete(MESSAGES, model_id=PRIMARY, credentials=TENANT, sink=Sink())
    prompt, completion = runtime.count_tokens(PRIMARY, MESSAGES), runtime.count_text_tokens(PRIMARY, ANSWER)
    assert (reply.prompt_tokens, reply.completion_tokens) == (prompt, completion) and completion > 10
    assert reply.cost_known
    assert reply.cost_usd == pytest.approx(prompt * INPUT_COST_PER_TOKEN + completion * OUTPUT_COST_PER_TOKEN)


def test_a_stream_that_carries_no_usage_at_all_is_counted_by_the_client(script, monkeypatch):
    """LiteLLM adds its own count when it was asked for usage; a provider that dropped stream_options gets none."""
    def chunk(text: str | None):
        return types.SimpleNamespace(choices=[types.SimpleNamespace(delta=types.SimpleNamespace(content=text))])

    def completion(**kwargs):
        assert kwargs["stream"] is True
        return iter([chunk("The total "), chunk(None), chunk("is 42.")])

    monkeypatch.setattr(runtime.load_litellm(), "completion", completion)
    reply = client().complete(MESSAGES, model_id=PRIMARY, credentials=TENANT, sink=Sink())
    assert reply.text == "The total is 42."
    assert reply.prompt_tokens == runtime.count_tokens(PRIMARY, MESSAGES) > 0
    assert reply.completion_tokens == runtime.count_text_tokens(PRIMARY, "The total is 42.") > 0


def test_a_streamed_answer_of_an_unpriced_model_costs_zero_and_says_so(script):
    script.queue("scripted/unpriced", Reply(ANSWER, prompt_tokens=100, completion_tokens=100))
    reply = client().complete(MESSAGES, model_id="scripted/unpriced", credentials=TENANT, sink=Sink())
    assert (reply.cost_usd, reply.cost_known, reply.prompt_tokens, reply.text) == (0.0, False, 100, ANSWER)


def test_params_cannot_set_the_stream_options(script):
    with pytest.raises(ValueError, match="stream_options"):
        client().complete(MESSAGES, model_id=PRIMARY, credentials=TENANT, sink=Sink(),
                          params={"stream_options": {"include_usage": False}})
    assert script.calls == []


def test_concurrent_streams_each_write_to_their_own_sink(script):
    tenants = [f"tenant-{i}" for i in range(6)]
    all_in_flight = threading.Barrier(len(tenants), timeout=30)

    def answer(call):
        all_in_flight.wait()
        return Reply(f"the answer for {call.messages[0]['content']} is here", chunk_delay_s=0.01)

    script.respond(PRIMARY, answer)
    llm = client(max_retries=0)
    sinks = {tenant: Sink() for tenant in tenants}
    replies: dict[str, str] = {}

    def ask(tenant: str) -> None:
        replies[tenant] = llm.complete([{"role": "user", "content": tenant}], model_id=PRIMARY, credentials=TENANT,
                                       sink=sinks[tenant]).text

    threads = [threading.Thread(target=ask, args=(tenant,)) for tenant in tenants]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for tenant in tenants:
        expected = f"the answer for {tenant} is here"
        assert replies[tenant] == "".join(sinks[tenant].writes) == expected
        assert len(sinks[tenant].writes) > 1


def test_a_fault_after_partial_text_fails_a_call_that_does_not_stream_at_once(script):
    script.queue(PRIMARY, Fault("bad_request", after_text="never seen"))
    with pytest.raises(LlmFailed) as caught:
        client().complete(MESSAGES, model_id=PRIMARY, credentials=TENANT)
    assert caught.value.code == "LLM_BAD_REQUEST" and not script.calls[0].stream
