"""LiteLLM is imported lazily and runs offline; its answers become plain values."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from common.llm import runtime

ROOT = Path(__file__).resolve().parents[3]

# In a fresh interpreter, with the offline switches unset and every DNS lookup recorded and refused.
_FRESH_PROCESS = textwrap.dedent("""
    import json, socket, sys
    lookups = []
    def refuse(host, *args, **kwargs):
        lookups.append(str(host))
        raise OSError("no network in this test")
    socket.getaddrinfo = refuse
    import common.llm.client
    lazy = "litellm" not in sys.modules
    from common.llm import count_tokens
    messages = [{"role": "user", "content": "What were the total sales per region in 2024?"}]
    models = ["openai/gpt-4o", "gemini/gemini-2.5-flash", "groq/llama-3.1-8b-instant",
              "hosted_vllm/meta-llama/Llama-2-7b"]
    counts = {model: count_tokens(model, messages) for model in models}
    print(json.dumps({"lazy": lazy, "loaded": "litellm" in sys.modules, "counts": counts, "lookups": lookups}))
""")


@pytest.fixture(scope="module")
def fresh_process() -> dict:
    env = {key: value for key, value in os.environ.items()
           if key not in ("LITELLM_LOCAL_MODEL_COST_MAP", "LITELLM_OFFLINE_MODE")}
    done = subprocess.run([sys.executable, "-c", _FRESH_PROCESS], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_the_client_does_not_import_litellm(fresh_process):
    assert fresh_process["lazy"] is True
    assert fresh_process["loaded"] is True  # the first token count did import it


def test_litellm_never_reaches_the_network_for_prices_or_tokenizers(fresh_process):
    # Without the offline switches LiteLLM fetches its price list at import and, for Llama models,
    # tries HuggingFace for a tokenizer (23 s of retries measured here) before falling back.
    assert fresh_process["lookups"] == []
    assert all(count > 5 for count in fresh_process["counts"].values()), fresh_process["counts"]


def test_token_counts_grow_with_the_text():
    short = runtime.count_tokens("gemini/gemini-2.5-flash", [{"role": "user", "content": "hi"}])
    long = runtime.count_tokens("gemini/gemini-2.5-flash", [{"role": "user", "content": "sales by region " * 50}])
    assert 0 < short < long


def test_a_failing_token_count_falls_back_to_an_estimate(monkeypatch):
    litellm = runtime.load_litellm()

    def broken(**kwargs):
        raise ValueError("unknown content part")

    monkeypatch.setattr(litellm, "token_counter", broken)
    assert runtime.count_tokens("openai/gpt-4o", [{"role": "user", "content": "x" * 400}]) == 100


def _exceptions():
    litellm = runtime.load_litellm()
    common = {"llm_provider": "openai", "model": "gpt-4o"}
    return [
        (litellm.RateLimitError("slow", **common), "rate_limit"),
        (litellm.ServiceUnavailableError("down", **common), "server_error"),
        (litellm.InternalServerError("oops", **common), "server_error"),
        (litellm.BadGatewayError("bad gateway", **common), "server_error"),
        (litellm.Timeout("slow", **common), "timeout"),
        (litellm.APIConnectionError("refused", **common), "connection"),
        (litellm.AuthenticationError("bad key", **common), "auth"),
        (litellm.BadRequestError("bad", **common), "bad_request"),
        (litellm.NotFoundError("no such model", **common), "bad_request"),
        (litellm.ContextWindowExceededError("too long", **common), "bad_request"),
        (ValueError("a bug"), None),
    ]


def test_provider_errors_are_classified():
    assert [(type(exc).__name__, runtime.error_kind(exc)) for exc, _ in _exceptions()] == \
        [(type(exc).__name__, kind) for exc, kind in _exceptions()]


def test_cost_of_an_unknown_model_is_zero_and_unknown():
    litellm = runtime.load_litellm()
    response = litellm.ModelResponse(model="no-such-model")
    assert runtime.cost_of(response, "nowhere/no-such-model") == (0.0, False)


def _openai_status_error(status: int):
    import httpx
    import openai

    request = httpx.Request("POST", "http://127.0.0.1/v1/audio/transcriptions")
    return openai.APIStatusError("scripted", response=httpx.Response(status, request=request), body=None)


@pytest.mark.parametrize(("status", "kind"), [(429, "rate_limit"), (401, "auth"), (403, "auth"),
                                              (503, "server_error"), (400, "bad_request")])
def test_the_openai_clients_own_errors_are_classified_like_litellms(status, kind):
    # LiteLLM's transcription path raises these unmapped.
    assert runtime.error_kind(_openai_status_error(status)) == kind


def test_openai_timeouts_and_connection_errors_are_transient_and_bugs_are_not_provider_errors():
    import httpx
    import openai

    request = httpx.Request("POST", "http://127.0.0.1/v1/audio/transcriptions")
    assert runtime.error_kind(openai.APITimeoutError(request=request)) == "timeout"
    assert runtime.error_kind(openai.APIConnectionError(request=request)) == "connection"
    assert runtime.error_kind(KeyError("text")) is None
