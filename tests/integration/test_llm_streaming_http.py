"""Streamed model calls over real HTTP on loopback: the reply budget, the piece limit, the time bound, the
endpoint pin and a cancel hold for a stream as they do for a whole reply.

Real LiteLLM, real HTTP: the endpoint is the scripted model server of tests/endless_model_server.py (a user's
``api_base`` streaming server-sent events, as many and as long as a test asks). Some providers (Gemini) only
send their request when the stream is first read, so reading it inside the call's pin and budget is what
holds them to both; the tests below name the ones that show it.
"""

from __future__ import annotations

import threading
import time

import pytest

from common.hosts import HostPolicy
from common.llm import Cancelled, Credentials, LlmClient, LlmFailed
from tests.endless_model_server import Answer, MiB, ModelReplyServer
from tests.memory import peak_growth

BUDGET = 2 * MiB  # below the default (4 MiB), which a stream read outside its call would get instead
MESSAGES = [{"role": "user", "content": "total revenue per region?"}]
MODEL = "openai/any-model"


@pytest.fixture(scope="module")
def endpoint():
    server = ModelReplyServer()
    yield server
    server.close()


def _vetted(*allowed: str):
    return HostPolicy.parse(",".join(allowed), "LLM_ALLOWED_HOSTS").vetted_addresses


@pytest.fixture
def llm(endpoint) -> LlmClient:
    # Retries allowed, so that one would show; the endpoint is vetted as a user's is (LLM_ALLOWED_HOSTS).
    llm = LlmClient(max_retries=2, timeout_seconds=30, sleep=lambda _: None, max_reply_bytes=BUDGET,
                    vet_host=_vetted("127.0.0.1"))
    endpoint.answer = Answer(content_bytes=64, event_chars=16)
    llm.complete(MESSAGES, model_id=MODEL, credentials=_user(endpoint.url), sink=Pieces())  # loads code, schemas
    return llm


def _user(base: str) -> Credentials:
    return Credentials("sk-test-key", base, "request", user_api_base=True)


class Pieces:
    """A TextSink that counts what it received."""

    def __init__(self) -> None:
        self.count = self.chars = self.restarts = 0
        self.first: str | None = None

    def write(self, text: str) -> None:
        self.count += 1
        self.chars += len(text)
        self.first = self.first or text

    def restart(self) -> None:
        self.restarts += 1


def test_a_streamed_reply_within_the_budget_arrives_in_pieces_and_whole(endpoint, llm):
    endpoint.answer = Answer(content_bytes=100_000, event_chars=1000)
    pieces = Pieces()
    reply = llm.complete(MESSAGES, model_id=MODEL, credentials=_user(endpoint.url), sink=pieces)
    assert len(reply.text) == 100_000 and reply.text.startswith("000000000 000000000")
    assert (pieces.count, pieces.chars, pieces.first) == (100, 100_000, reply.text[:1000])
    # The endpoint reports no usage: LiteLLM's count of the prompt and the text stands in.
    assert reply.prompt_tokens > 0 and reply.completion_tokens > 1000 and not reply.cost_known


def test_an_endless_stream_fails_at_the_callers_budget_after_one_request(endpoint, llm):
    endpoint.answer = Answer(endless=True, event_chars=4096)
    before = endpoint.requests_to("/chat/completions")
    pieces = Pieces()

    def ask():
        with pytest.raises(LlmFailed) as caught:
            llm.complete(MESSAGES, model_id=MODEL, credentials=_user(endpoint.url), fallback_models=[MODEL],
                         sink=pieces)
        return caught.value

    failure, growth = peak_growth(ask)
    assert failure.code == "MODEL_REPLY_TOO_LARGE" and failure.status == 502
    assert [(r.model, r.error_kind, r.detail) for r in failure.attempts] == [
        (MODEL, "reply_too_large", "ModelReplyTooLarge")]
    assert endpoint.requests_to("/chat/completions") == before + 1
    assert 0 < pieces.chars <= BUDGET and pieces.restarts == 0
    # LiteLLM keeps every piece and the text so far on top of the bytes read; the budget bounds them all.
    assert growth < 6 * BUDGET, f"grew by {growth / MiB:.0f} MiB for a {BUDGET // MiB} MiB budget"


def test_a_stream_of_tiny_pieces_stops_at_the_piece_limit(endpoint):
    llm = LlmClient(max_retries=2, timeout_seconds=30, sleep=lambda _: None, max_stream_chunks=1000)
    endpoint.answer = Answer(content_bytes=50_000, event_chars=2)  # 25,000 pieces, 1.5 MB on the wire
    before = endpoint.requests_to("/chat/completions")
    pieces = Pieces()
    with pytest.raises(LlmFailed) as caught:
        llm.complete(MESSAGES, model_id=MODEL, credentials=Credentials("sk", endpoint.url, "server"), sink=pieces)
    assert caught.value.code == "MODEL_REPLY_TOO_LARGE"
    assert [r.detail for r in caught.value.attempts] == ["TooManyStreamChunks"]
    assert endpoint.requests_to("/chat/completions") == before + 1
    assert pieces.count < 1000


def test_a_cancel_stops_a_stream_that_would_not_end(endpoint):
    llm = LlmClient(max_retries=2, timeout_seconds=30, sleep=lambda _: None, max_reply_bytes=256 * MiB,
                    max_stream_chunks=10_000_000)
    endpoint.answer = Answer(endless=True, event_chars=64)
    before = endpoint.requests_to("/chat/completions")
    pieces = Pieces()
    with pytest.raises(Cancelled) as caught:
        llm.complete(MESSAGES, model_id=MODEL, credentials=Credentials("sk", endpoint.url, "server"), sink=pieces,
                     cancelled=lambda: pieces.count > 0)
    assert [(r.model, r.ok, r.error_kind) for r in caught.value.attempts] == [(MODEL, False, "cancelled")]
    assert endpoint.requests_to("/chat/completions") == before + 1
    assert 0 < pieces.chars < 64 * MiB  # a cancel is checked every half second, not after 256 MB


def test_a_stream_that_drips_ends_at_its_time_bound_not_when_the_endpoint_stops(endpoint):
    """Every read returns within the read timeout, so only the stream's own bound ends it, on each attempt."""
    llm = LlmClient(max_retries=1, timeout_seconds=10, sleep=lambda _: None, max_stream_seconds=1.0)
    endpoint.answer = Answer(content_bytes=3000, event_chars=10, event_interval_s=0.1)  # 300 pieces over 30 s
    before = endpoint.requests_to("/chat/completions")
    pieces = Pieces()
    started = time.monotonic()
    with pytest.raises(LlmFailed) as caught:
        llm.complete(MESSAGES, model_id=MODEL, credentials=Credentials("sk", endpoint.url, "server"), sink=pieces)
    elapsed = time.monotonic() - started
    assert caught.value.code == "LLM_TIMEOUT" and "StreamTooSlow" in caught.value.message
    assert [(r.model, r.error_kind, r.detail) for r in caught.value.attempts] == [
        (MODEL, "timeout", "StreamTooSlow")] * 2
    assert all(1000 <= r.latency_ms < 5000 for r in caught.value.attempts)
    assert endpoint.requests_to("/chat/completions") == before + 2 and pieces.restarts == 1
    assert 0 < pieces.count < 2 * 30  # about ten pieces a second, for about a second per attempt
    assert 2.0 <= elapsed < 15.0, f"took {elapsed:.1f} s: the endpoint alone would take 60 s for both attempts"




def _rebound(endpoint: ModelReplyServer) -> str:
    return endpoint.url.replace("127.0.0.1", "rebind.test")


def test_a_stream_goes_to_the_address_that_was_checked(endpoint, rebinding_dns):
    llm = LlmClient(max_retries=0, timeout_seconds=10, vet_host=lambda host: ["127.0.0.1"])
    endpoint.answer = Answer(content_bytes=5000, event_chars=100)
    pieces = Pieces()
    reply = llm.complete(MESSAGES, model_id=MODEL, credentials=_user(_rebound(endpoint)), sink=pieces)
    assert len(reply.text) == 5000 and pieces.count == 50


def test_a_stream_opened_on_first_read_is_still_pinned(endpoint, rebinding_dns):
    """Gemini's stream sends its request when first read: read after the call, it would look the name up again."""
    llm = LlmClient(max_retries=0, timeout_seconds=10, vet_host=lambda host: ["127.0.0.1"])
    endpoint.answer = Answer(content_bytes=64)
    before = endpoint.requests_to(":streamGenerateContent?alt=sse")
    with pytest.raises(LlmFailed):  # the endpoint speaks OpenAI's protocol, not Gemini's: only the request counts
        llm.complete(MESSAGES, model_id="gemini/gemini-2.5-flash", credentials=_user(_rebound(endpoint)),
                     sink=Pieces())
    assert endpoint.requests_to(":streamGenerateContent?alt=sse") == before + 1


def test_a_stream_opened_on_first_read_keeps_the_callers_budget(endpoint):
    """3 MiB, announced: past the caller's 2 MiB budget, within the 4 MiB default a later read would get."""
    llm = LlmClient(max_retries=2, timeout_seconds=10, sleep=lambda _: None, max_reply_bytes=BUDGET,
                    vet_host=_vetted("127.0.0.1"))
    endpoint.answer = Answer(content_bytes=3 * MiB, chunked=False)
    before = endpoint.requests_to(":streamGenerateContent?alt=sse")
    with pytest.raises(LlmFailed) as caught:
        llm.complete(MESSAGES, model_id="gemini/gemini-2.5-flash", credentials=_user(endpoint.url), sink=Pieces())
    assert caught.value.code == "MODEL_REPLY_TOO_LARGE"
    assert endpoint.requests_to(":streamGenerateContent?alt=sse") == before + 1


@pytest.fixture
def redirector(endpoint, monkeypatch):
    """``allowed.test``: an endpoint (on loopback) that redirects every POST to ``endpoint`` by its IP address."""
    from tests.redirector import redirecting_endpoint

    with redirecting_endpoint(endpoint.url, monkeypatch) as served:
        yield served


@pytest.mark.parametrize("allowed", [("allowed.test",), ("allowed.test", "127.0.0.1")], ids=["refused", "allowed"])
def test_a_streams_redirect_is_held_to_the_policy(endpoint, redirector, allowed):
    base, hits = redirector
    llm = LlmClient(max_retries=0, timeout_seconds=10, vet_host=_vetted(*allowed))
    endpoint.answer = Answer(content_bytes=500, event_chars=100)
    before = endpoint.requests_to("/chat/completions")
    pieces = Pieces()
    if "127.0.0.1" in allowed:
        assert llm.complete(MESSAGES, model_id=MODEL, credentials=_user(base), sink=pieces).text.startswith("0000")
        assert pieces.count == 5 and endpoint.requests_to("/chat/completions") == before + 1
    else:
        with pytest.raises(LlmFailed):
            llm.complete(MESSAGES, model_id=MODEL, credentials=_user(base), sink=pieces)
        assert pieces.count == 0 and endpoint.requests_to("/chat/completions") == before
    assert len(hits) == 1


def test_concurrent_streams_keep_their_own_budgets(endpoint):
    """The budget travels with the thread that reads: a small one on one thread does not cut a stream on another."""
    endpoint.answer = Answer(content_bytes=400_000, event_chars=1000)
    small = LlmClient(max_retries=0, timeout_seconds=30, max_reply_bytes=100_000)
    large = LlmClient(max_retries=0, timeout_seconds=30, max_reply_bytes=4 * MiB)
    credentials = Credentials("sk", endpoint.url, "server")
    results: dict[str, object] = {}

    def ask(name: str, llm: LlmClient) -> None:
        try:
            results[name] = len(llm.complete(MESSAGES, model_id=MODEL, credentials=credentials, sink=Pieces()).text)
        except LlmFailed as exc:
            results[name] = exc.code

    threads = [threading.Thread(target=ask, args=(f"{size}-{i}", llm))
               for i in range(3) for size, llm in (("small", small), ("large", large))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == {**{f"small-{i}": "MODEL_REPLY_TOO_LARGE" for i in range(3)},
                       **{f"large-{i}": 400_000 for i in range(3)}}
