"""Model ids: what a request names becomes one LiteLLM id, never another provider's model."""

from __future__ import annotations

import pytest

from common.errors import BadRequest
from common.llm.models import compose_model_id, provider_of


@pytest.mark.parametrize(("provider", "model", "default", "expected"), [
    ("GEMINI", "gemini-2.5-flash", None, "gemini/gemini-2.5-flash"),  # the original frontend's enum spelling
    ("openai", "gpt-4o-mini", "gemini/gemini-2.5-flash", "openai/gpt-4o-mini"),
    (None, "openrouter/anthropic/claude-3.5-sonnet", None, "openrouter/anthropic/claude-3.5-sonnet"),
    ("openai", "hosted_vllm/Qwen/Qwen2.5-7B", None, "hosted_vllm/Qwen/Qwen2.5-7B"),  # a full id wins, case kept
    ("GEMINI", "GEMINI/gemini-2.5-pro", None, "gemini/gemini-2.5-pro"),
    (" openai ", " gpt-4o ", None, "openai/gpt-4o"),
    (None, None, "gemini/gemini-2.5-flash", "gemini/gemini-2.5-flash"),
    ("", "", "gemini/gemini-2.5-flash", "gemini/gemini-2.5-flash"),
    ("Gemini", None, "gemini/gemini-2.5-flash", "gemini/gemini-2.5-flash"),
])
def test_compose_model_id(provider, model, default, expected):
    assert compose_model_id(provider, model, default) == expected


def test_provider_alone_without_a_default_is_a_400():
    with pytest.raises(BadRequest) as caught:
        compose_model_id("openai", None, None)
    assert caught.value.status == 400
    assert "openai" in caught.value.message


def test_provider_alone_never_gets_another_providers_default():
    # The original's registry search could answer an OpenAI user with a Gemini model (LEGACY_API.md D16).
    with pytest.raises(BadRequest, match="belongs to 'gemini'"):
        compose_model_id("openai", None, "gemini/gemini-2.5-flash")


@pytest.mark.parametrize(("provider", "model"), [
    (None, "gpt-4o"),            # no provider to send the key to
    (None, None),                # nothing, and no default
    ("open ai", "gpt-4o"),       # not a provider name
    ("openai", "gpt 4o"),        # whitespace in the id
    (None, "gemini/"),           # a provider with no model
    ("openai", "x" * 300),
])
def test_unusable_requests_are_400(provider, model):
    with pytest.raises(BadRequest) as caught:
        compose_model_id(provider, model, None)
    assert caught.value.code == "INVALID_MODEL"


def test_provider_of():
    assert provider_of("gemini/gemini-2.5-flash") == "gemini"
    assert provider_of("openrouter/anthropic/claude") == "openrouter"
    with pytest.raises(BadRequest):
        provider_of("gpt-4o")
