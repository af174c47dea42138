"""Which list request checks which provider's key, and which models of an endpoint's list are chat models."""

from __future__ import annotations

import pytest

from common import errors
from common.config import Settings
from common.llm import model_lists
from common.llm.model_lists import ServedModel
from common.llm.models import served_model_id
from common.services.llm_config import key_checks


def test_each_provider_with_a_list_sends_the_key_its_own_way():
    openai = model_lists.provider_list_request("openai", {})
    assert openai.url() == "https://api.openai.com/v1/models" and openai.key_header == "Authorization"
    anthropic = model_lists.provider_list_request("anthropic", {})
    assert anthropic.key_header == "x-api-key" and ("anthropic-version", "2023-06-01") in anthropic.headers
    gemini = model_lists.provider_list_request("gemini", {})
    assert gemini.key_header == "x-goog-api-key" and "key=" not in gemini.url() and 400 in gemini.refusals
    assert model_lists.provider_list_request("openrouter", {}).url() == "https://openrouter.ai/api/v1/key"


def test_llm_key_check_urls_replaces_a_base_and_adds_openai_style_providers():
    urls = model_lists.parse_base_urls(" gemini=http://127.0.0.1:9/v1beta , Scripted=https://proxy.internal/v1")
    assert urls == {"gemini": "http://127.0.0.1:9/v1beta", "scripted": "https://proxy.internal/v1"}
    gemini = model_lists.provider_list_request("gemini", urls)
    assert gemini.url() == "http://127.0.0.1:9/v1beta/models" and gemini.key_header == "x-goog-api-key"
    scripted = model_lists.provider_list_request("scripted", urls)
    assert scripted.url() == "https://proxy.internal/v1/models" and scripted.key_header == "Authorization"
    assert model_lists.provider_list_request("perplexity", urls) is None


@pytest.mark.parametrize("raw", ["gemini", "gemini=", "=http://x/v1", "gemini=ftp://x/v1", "gemini=not a url"])
def test_a_malformed_llm_key_check_urls_is_a_configuration_error(raw):
    with pytest.raises(errors.ConfigurationError, match="LLM_KEY_CHECK_URLS"):
        model_lists.parse_base_urls(raw)


def test_which_keys_can_be_checked_without_a_paid_call():
    plain = Settings.from_env({})
    assert key_checks.checkable(plain, "gemini", None) and not key_checks.checkable(plain, "perplexity", None)
    assert key_checks.checkable(plain, "perplexity", "http://vllm.internal/v1")  # its endpoint lists
    assert key_checks.checkable(plain.replace(llm_api_base="http://gateway.internal/v1"), "perplexity", None)
    assert key_checks.checkable(plain.replace(llm_key_check_urls="perplexity=http://x/v1"), "perplexity", None)


def test_a_provider_without_a_list_is_refused_before_any_call():
    with pytest.raises(errors.BadRequest, match="cannot be checked without a paid call") as refused:
        key_checks.check_key(Settings.from_env({}), "perplexity", "pplx-0123456789abcdef", None)
    assert refused.value.code == "KEY_NOT_CHECKABLE"


def test_only_the_chat_models_of_an_endpoints_list_are_kept():
    served = (ServedModel("gpt-4o"), ServedModel("text-embedding-3-small"), ServedModel("dall-e-3"),
              ServedModel("whisper-1"), ServedModel("tts-1-hd"), ServedModel("container"),  # openai/container
              ServedModel("llama3.1:8b"), ServedModel("nomic-embed-text"), ServedModel("bge-reranker-v2"),
              ServedModel("Qwen/Qwen2.5-7B-Instruct", kind="chat"), ServedModel("flux-dev", kind="image"),
              ServedModel("e5-large", kind="embedding"), ServedModel("has space"), ServedModel("x" * 300))
    assert key_checks.chat_models("openai", served) == (
        "openai/Qwen/Qwen2.5-7B-Instruct", "openai/gpt-4o", "openai/llama3.1:8b")


def test_a_served_model_keeps_its_name_whole():
    assert served_model_id("hosted_vllm", "meta-llama/Llama-3.1-8B") == "hosted_vllm/meta-llama/Llama-3.1-8B"
    assert served_model_id("openai", "llama3.1:8b") == "openai/llama3.1:8b"
    for unusable in ("", "a b", "tab\there", "x" * 300, "nul\x00", "\u200b"):
        assert served_model_id("openai", unusable) is None
