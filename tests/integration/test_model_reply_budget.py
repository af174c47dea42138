"""A model endpoint cannot take the instance's memory: every reply is read up to LLM_MAX_REPLY_BYTES.

Real LiteLLM, real HTTP on loopback: the endpoint (tests/endless_model_server.py) is a user's ``api_base``
that answers with 200 MB, a gzip bomb, or a body without end. The call fails at the budget with
MODEL_REPLY_TOO_LARGE (a 502: the upstream misbehaved), after one request (asking again would read as much
again), recorded like any failed call; the process grows by about the budget, not by the reply; a reply
within the budget is read whole. Memory is the peak of VmRSS sampled while the call runs.
"""

from __future__ import annotations

import threading
import time

import pytest

from common.hosts import HostPolicy
from common.llm import Credentials, LlmClient, LlmFailed, runtime
from tests.endless_model_server import Answer, MiB, ModelReplyServer

BUDGET = 4 * MiB  # the default; a smaller one is lost in what a first failing call allocates anyway (~3 MiB)
HUGE = 200 * MiB
WEBM = b"\x1a\x45\xdf\xa3" + b"\x00" * 64
MESSAGES = [{"role": "user", "content": "total revenue per region?"}]


@pytest.fixture(scope="module")
def endpoint():
    server = ModelReplyServer()
    yield server
    server.close()


@pytest.fixture
def client(endpoint):
    # Retries allowed, so that one would show; the endpoint is vetted as a user's is (LLM_ALLOWED_HOSTS).
    client = LlmClient(max_retries=2, timeout_seconds=30, sleep=lambda _: None, max_reply_bytes=BUDGET,
                       vet_host=HostPolicy.parse("127.0.0.1", "LLM_ALLOWED_HOSTS").vetted_addresses)
    endpoint.answer = Answer(content_bytes=64)
    client.complete(MESSAGES, model_id="openai/any-model", credentials=_user(endpoint.url))  # connections, caches
    return client


def _user(base: str) -> Credentials:
    return Credentials("sk-test-key", base, "request", user_api_base=True)


class PeakRss:
    """How much the process's resident memory rose, at most, while inside."""

    def __enter__(self) -> PeakRss:
        self._start = self._peak = _rss()
        self._done = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._sampler.join()
        self.growth = max(self._peak, _rss()) - self._start

    def _sample(self) -> None:
        while not self._done.wait(0.001):
            self._peak = max(self._peak, _rss())


def _rss() -> int:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


def _assert_cut_off(failure: LlmFailed, model: str) -> None:
    assert failure.code == "MODEL_REPLY_TOO_LARGE" and failure.status == 502
    assert "LLM_MAX_REPLY_BYTES" in failure.message
    assert [(r.model, r.ok, r.error_kind, r.detail) for r in failure.attempts] == [
        (model, False, "reply_too_large", "ModelReplyTooLarge")]  # one attempt, counted in usage


@pytest.mark.parametrize("answer", [Answer(content_bytes=HUGE), Answer(content_bytes=HUGE, chunked=False),
                                    Answer(content_bytes=HUGE, gzip=True), Answer(endless=True)],
                         ids=["200MB-chunked", "200MB-announced", "200MB-gzip-bomb", "endless"])
def test_a_huge_completion_fails_at_the_budget_after_one_request(endpoint, client, answer):
    endpoint.answer = answer
    before = endpoint.requests_to("/chat/completions")
    with PeakRss() as memory, pytest.raises(LlmFailed) as caught:
        client.complete(MESSAGES, model_id="openai/any-model", credentials=_user(endpoint.url))
    _assert_cut_off(caught.value, "openai/any-model")
    assert endpoint.requests_to("/chat/completions") == before + 1
    assert memory.growth < 3 * BUDGET, f"grew by {memory.growth / MiB:.0f} MiB for a {BUDGET // MiB} MiB budget"


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
def test_a_completion_within_the_budget_is_read_whole(endpoint, client, gzip):
    size = BUDGET - 64 * 1024  # the JSON around the text fits in the rest
    endpoint.answer = Answer(content_bytes=size, gzip=gzip)
    reply = client.complete(MESSAGES, model_id="openai/any-model", credentials=_user(endpoint.url))
    assert reply.text == "a" * size and reply.completion_tokens == 5


def test_a_huge_transcript_fails_at_the_budget_and_a_normal_one_is_read(endpoint, client):
    endpoint.answer = Answer(content_bytes=HUGE)
    before = endpoint.requests_to("/audio/transcriptions")
    with PeakRss() as memory, pytest.raises(LlmFailed) as caught:
        client.transcribe(WEBM, filename="v.webm", content_type="audio/webm", model_id="openai/whisper-1",
                          credentials=_user(endpoint.url))
    _assert_cut_off(caught.value, "openai/whisper-1")
    assert endpoint.requests_to("/audio/transcriptions") == before + 1
    assert memory.growth < 3 * BUDGET, f"grew by {memory.growth / MiB:.0f} MiB for a {BUDGET // MiB} MiB budget"

    endpoint.answer = Answer(content_bytes=1000)
    transcript = client.transcribe(WEBM, filename="v.webm", content_type="audio/webm", model_id="openai/whisper-1",
                                   credentials=_user(endpoint.url))
    assert transcript.text == "a" * 1000


def _stream(endpoint: ModelReplyServer, budget: int):
    """Open a streamed completion within ``budget``; the caller reads it, after the call returned."""
    from common.llm import transport

    litellm = runtime.load_litellm()
    with transport.bounded_replies(budget, vetted=False):
        return litellm.completion(model="openai/any-model", messages=MESSAGES, api_key="sk-test-key",
                                  api_base=endpoint.url, timeout=30, num_retries=0, stream=True)


def test_a_streamed_reply_is_cut_off_at_the_budget_of_the_call_that_opened_it(endpoint, client):
    budget = 2 * MiB  # below the default, which would apply to a stream read outside its call
    endpoint.answer = Answer(content_bytes=10_000)
    assert sum(1 for _ in _stream(endpoint, budget)) > 2  # LiteLLM's first stream loads code and schemas
    endpoint.answer = Answer(endless=True, event_chars=4096)
    before = endpoint.requests_to("/chat/completions")
    received = 0
    with PeakRss() as memory, pytest.raises(Exception) as caught:
        for chunk in _stream(endpoint, budget):
            received += len(chunk.choices[0].delta.content or "") if chunk.choices else 0
            if received > 8 * budget:
                break  # no budget: fail the test instead of reading 256 MB
    assert runtime.error_kind(caught.value) == "reply_too_large"
    assert received <= budget
    assert endpoint.requests_to("/chat/completions") == before + 1
    # LiteLLM keeps every chunk of a stream and the text so far, on top of the bytes read (see the report).
    assert memory.growth < 6 * budget, f"grew by {memory.growth / MiB:.0f} MiB for a {budget // MiB} MiB budget"


def test_a_streamed_reply_within_the_budget_is_read_whole(endpoint, client):
    endpoint.answer = Answer(content_bytes=100_000, event_chars=1000)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in _stream(endpoint, BUDGET) if chunk.choices)
    assert len(text) == 100_000 and text.startswith("000000000 000000000")


@pytest.fixture
def redirector(endpoint, monkeypatch):
    """``allowed.test``: an endpoint (on loopback) that redirects every POST to ``endpoint`` by its IP address."""
    from tests.redirector import redirecting_endpoint

    with redirecting_endpoint(endpoint.url, monkeypatch) as (base, _):
        yield base


def test_a_users_redirect_cannot_ride_a_connection_open_to_the_operators_endpoint(endpoint, redirector):
    """One transport serves every client LiteLLM builds: the connection an operator's call left open (to a
    private address the policy refuses users) is not in the pool a user's call draws from."""
    endpoint.answer = Answer(content_bytes=64, keep_alive=True)
    client = LlmClient(max_retries=0, timeout_seconds=10,
                       vet_host=HostPolicy.parse("allowed.test", "LLM_ALLOWED_HOSTS").vetted_addresses)
    operator = Credentials("sk-operator", endpoint.url, "server")  # LLM_API_BASE: not held to the policy
    assert client.complete(MESSAGES, model_id="openai/any-model", credentials=operator).text == "a" * 64
    before = endpoint.requests_to("/chat/completions")
    time.sleep(0.05)  # the operator's connection is back in its pool, idle and open
    with pytest.raises(LlmFailed):
        client.complete(MESSAGES, model_id="openai/any-model", credentials=_user(redirector))
    assert endpoint.requests_to("/chat/completions") == before
