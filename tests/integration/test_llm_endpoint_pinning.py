"""A user's model endpoint is held to LLM_ALLOWED_HOSTS at every call, at the addresses that were checked:
a DNS answer that changes between the check and LiteLLM's own lookup (rebinding) cannot move the call.

Real LiteLLM, real HTTP on loopback: the scripted Whisper-protocol server listens on 127.0.0.1; the name
``rebind.test`` is made to resolve to 127.0.0.2 (where nothing listens) for anyone who looks it up again.
"""

from __future__ import annotations

import socket

import pytest

from common import errors
from common.hosts import HostNotAllowed, HostPolicy
from common.llm import Credentials, LlmClient

WEBM = b"\x1a\x45\xdf\xa3" + b"\x00" * 64


def _transcribe(client: LlmClient, base: str, *, user_api_base: bool = True):
    credentials = Credentials("sk-test-key", base, "request", user_api_base=user_api_base)
    return client.transcribe(WEBM, filename="v.webm", content_type="audio/webm", model_id="openai/whisper-1",
                             credentials=credentials)


def test_the_call_goes_to_the_address_that_was_checked(whisper, rebinding_dns):
    checked = []

    def vet(host):  # the check saw 127.0.0.1, an address the policy allows
        checked.append(host)
        return ["127.0.0.1"]

    client = LlmClient(max_retries=0, timeout_seconds=10, vet_host=vet)
    port = whisper.url.rsplit(":", 1)[1].split("/")[0]
    before = len(whisper.requests)
    assert _transcribe(client, f"http://rebind.test:{port}/v1").text == whisper.text.strip()
    assert checked == ["rebind.test"] and len(whisper.requests) == before + 1
    assert socket.getaddrinfo("rebind.test", 80)[0][4][0] == "127.0.0.2"  # the pin ended with the call


def test_a_refused_endpoint_is_never_called(whisper):
    client = LlmClient(max_retries=0, timeout_seconds=10,
                       vet_host=HostPolicy.parse("public", "LLM_ALLOWED_HOSTS").vetted_addresses)
    before = len(whisper.requests)
    with pytest.raises(HostNotAllowed, match="LLM_ALLOWED_HOSTS"):
        _transcribe(client, whisper.url)
    assert len(whisper.requests) == before


def test_the_operators_own_endpoint_is_not_held_to_the_users_policy(whisper):
    client = LlmClient(max_retries=0, timeout_seconds=10,
                       vet_host=HostPolicy.parse("public", "LLM_ALLOWED_HOSTS").vetted_addresses)
    assert _transcribe(client, whisper.url, user_api_base=False).text  # LLM_API_BASE on a private network


@pytest.fixture
def redirector(whisper, monkeypatch):
    """``allowed.test`` redirecting every POST to the whisper server by its IP, an address the policy refuses."""
    from tests.redirector import redirecting_endpoint

    with redirecting_endpoint(whisper.url, monkeypatch) as served:
        yield served


def test_a_redirect_to_an_address_the_policy_refuses_is_not_followed(whisper, redirector):
    base, hits = redirector
    client = LlmClient(max_retries=0, timeout_seconds=10,
                       vet_host=HostPolicy.parse("allowed.test", "LLM_ALLOWED_HOSTS").vetted_addresses)
    before = len(whisper.requests)
    with pytest.raises(errors.UpstreamError):
        _transcribe(client, base)
    assert len(hits) == 1 and len(whisper.requests) == before  # asked the endpoint, never reached past it


def test_a_redirect_the_policy_allows_is_followed(whisper, redirector):
    """The same redirect with 127.0.0.1 allowed reaches the server: the clients do follow redirects, so the
    refusal above is the policy's doing."""
    base, hits = redirector
    client = LlmClient(max_retries=0, timeout_seconds=10,
                       vet_host=HostPolicy.parse("allowed.test,127.0.0.1", "LLM_ALLOWED_HOSTS").vetted_addresses)
    before = len(whisper.requests)
    assert _transcribe(client, base).text == whisper.text.strip()
    assert len(hits) == 1 and len(whisper.requests) == before + 1


def test_a_key_checks_model_list_goes_to_the_address_that_was_checked(rebinding_dns):
    """The list request of a key check (common/llm/model_lists.py) is pinned the same way as a model call."""
    from common.llm import model_lists
    from tests.model_server import ModelServer, Reply

    checked = []

    def vet(host):
        checked.append(host)
        return ["127.0.0.1"]

    with ModelServer(lambda agent, messages: Reply("unused")) as server:
        port = server.url.rsplit(":", 1)[1].split("/")[0]
        request = model_lists.ListRequest(f"http://rebind.test:{port}/v1")
        served = model_lists.list_models(request, "sk-test-key", who="the endpoint", timeout_seconds=5, vet_host=vet)
        assert served and checked == ["rebind.test"] and server.listings == [("/v1/models", "sk-test-key")]
        with pytest.raises(errors.UpstreamError, match="could not be reached"):  # unpinned: 127.0.0.2, no one
            model_lists.list_models(request, "sk-test-key", who="the endpoint", timeout_seconds=5)
