"""The provider and model registry (from LiteLLM's bundled map), and the checks on keys and model parameters."""

from __future__ import annotations

import pytest

from common import errors
from common.crypto import Encryptor, generate_key
from common.llm.runtime import load_litellm
from common.services.llm_config import fields, registry


@pytest.fixture(scope="module")
def known() -> registry.Registry:
    return registry.registry()


def test_providers_are_lower_case_ids_that_litellm_routes(known):
    litellm = load_litellm()
    assert {"gemini", "openai", "anthropic", "groq", "mistral"} <= set(known.providers)
    assert all(provider == provider.lower() for provider in known.providers)
    assert list(known.providers) == sorted(known.providers)
    for provider in ("gemini", "openai", "anthropic", "groq", "mistral", "vertex_ai", "bedrock"):
        model = known.models_of(provider)[0]
        assert litellm.get_llm_provider(model)[1] == provider, model


def test_providers_without_chat_models_are_left_out_unless_openai_compatible(known):
    assert "deepgram" not in known.providers and "elevenlabs" not in known.providers  # speech only
    assert {"hosted_vllm", "ollama", "lm_studio"} <= set(known.providers)
    assert known.models_of("hosted_vllm") == ()
    assert registry.needs_api_base("hosted_vllm") and not registry.needs_api_base("gemini")
    assert all(known.models_of(p) for p in known.providers if not registry.needs_api_base(p))


def test_models_are_sorted_full_ids_of_chat_models_only(known):
    litellm = load_litellm()
    gemini = known.models_of("gemini")
    assert list(gemini) == sorted(gemini) and "gemini/gemini-2.5-flash" in gemini
    assert all(model.startswith("gemini/") for model in gemini)
    embeddings = [name for name, entry in litellm.model_cost.items()
                  if entry.get("litellm_provider") == "gemini" and entry.get("mode") == "embedding"]
    assert embeddings and not set(embeddings) & set(gemini)
    assert "openai/gpt-4o" in known.models_of("openai")  # filed without its prefix in the map
    assert known.all_models() == sorted(known.all_models())


def test_what_the_map_files_as_chat_but_no_chat_completion_serves_is_left_out(known):
    openai = set(known.models_of("openai"))
    assert "openai/gpt-4o" in openai and "openai/gpt-4o-mini" in openai
    for not_a_chat_model in ("openai/container",  # a code-interpreter session, priced per session
                             "openai/ft:gpt-4o-2024-08-06",  # the price template of fine-tuned models
                             "openai/computer-use-preview",  # the Responses API only
                             "openai/gpt-image-1", "openai/gpt-realtime", "openai/dall-e-3"):
        assert not_a_chat_model not in openai
    assert known.is_chat_model("gpt-4o") and known.is_chat_model("openai/gpt-4o")
    assert known.is_chat_model("text-embedding-3-small") is False and known.is_chat_model("openai/container") is False
    assert known.is_chat_model("no-such-model-anywhere") is None


def test_models_filed_under_a_family_belong_to_its_provider(known):
    vertex = known.models_of("vertex_ai")
    assert any("claude" in model for model in vertex)  # vertex_ai-anthropic_models
    assert "bedrock_converse" not in known.providers


def test_the_registry_is_built_once_and_again_when_a_provider_is_registered(known):
    from tests.scripted_llm import install_scripted_llm

    install_scripted_llm()
    assert registry.registry() is registry.registry()
    assert "scripted/model" in registry.registry().models_of("scripted")


def test_the_test_model_is_the_cheapest_priced_chat_model(known):
    chosen = known.test_model("gemini")
    priced = [known.prices[model] for model in known.models_of("gemini") if known.prices[model]]
    assert known.prices[chosen] == min(priced)
    assert known.test_model("hosted_vllm") is None


@pytest.mark.parametrize("sent", ["gemini", "GEMINI", " Gemini "])
def test_provider_names_match_case_insensitively(sent):
    assert registry.provider_id(sent) == "gemini"


@pytest.mark.parametrize("sent", ["nope", "OPENAI/gpt-4o", "", None, 3, "x" * 500])
def test_an_unknown_or_malformed_provider_is_refused(sent):
    with pytest.raises(errors.BadRequest):
        registry.provider_id(sent)


def test_a_model_its_endpoint_serves_is_accepted_and_only_those():
    served = ("openai/llama3.1:8b", "openai/meta-llama/Llama-3.1-8B")
    assert registry.model_of("openai", "llama3.1:8b", served) == "openai/llama3.1:8b"
    assert registry.model_of("openai", "openai/meta-llama/Llama-3.1-8B", served) == "openai/meta-llama/Llama-3.1-8B"
    assert registry.model_of("openai", "meta-llama/Llama-3.1-8B", served) == "openai/meta-llama/Llama-3.1-8B"
    for model in ("gpt-4o", "openai/gpt-4o", "llama3.1", "openai/llama3.1:8b-other"):  # its calls go to the endpoint
        with pytest.raises(errors.BadRequest, match="endpoint"):
            registry.model_of("openai", model, served)


def test_a_model_must_be_a_chat_model_of_its_provider():
    assert registry.model_of("gemini", "gemini-2.5-flash") == "gemini/gemini-2.5-flash"
    assert registry.model_of("gemini", "GEMINI/gemini-2.5-flash") == "gemini/gemini-2.5-flash"
    assert registry.model_of("hosted_vllm", "my-served-model") == "hosted_vllm/my-served-model"
    for provider, model in (("gemini", "openai/gpt-4o"), ("gemini", "gemini/no-such-model"), ("gemini", ""),
                            ("gemini", "gemini/text-embedding-004"), ("openai", 4)):
        with pytest.raises(errors.BadRequest):
            registry.model_of(provider, model)


@pytest.mark.parametrize("key", ["AIzaSyD-realistic_Key.0123456789", "sk-ant-api03-AbCdEf0123456789",
                                 "gsk_ABCdef1234567890xyz"])
def test_realistic_keys_are_plausible(key):
    assert fields.plausible_key(key) == key


@pytest.mark.parametrize("key", ["short", "sk-with space-0123456789", "x" * 513, "test-test", "your-api-key-here",
                                 "<YOUR_OPENAI_KEY>", "xxxxxxxxxxxxxxxx", "changeme", "sk-ключ-0123456789",
                                 "test-key-1234", "fake_key_0001", "your-openai-key", "12345678901234"])
def test_placeholders_and_malformed_keys_are_refused(key):
    with pytest.raises(errors.BadRequest):
        fields.plausible_key(key)


def test_a_ciphertext_is_not_a_key():
    ciphertext = Encryptor(generate_key()).encrypt("sk-real-key-0123456789abcdef")
    with pytest.raises(errors.BadRequest, match="encrypted"):
        fields.plausible_key(ciphertext)


def test_api_base_follows_the_request_rule():
    assert fields.api_base("http://vllm.internal:8000/v1") == "http://vllm.internal:8000/v1"
    assert fields.api_base("") is None and fields.api_base(None) is None
    for bad in ("ftp://host/x", "https://user:pw@host/v1", "not a url", "/relative", 5, "https://h/" + "a" * 3000):
        with pytest.raises(errors.BadRequest):
            fields.api_base(bad)


def test_model_params_are_checked_and_unknown_ones_refused():
    params = {"temperature": 0.2, "max_tokens": 512, "reasoning_effort": "low", "seed": 7, "verbosity": "high"}
    assert fields.model_params(params) == params
    assert fields.model_params(None) == {} and fields.model_params({"seed": None}) == {}
    for bad in ({"temperature": 2.5}, {"temperature": True}, {"temperature": "0.5"}, {"max_tokens": 0},
                {"max_tokens": 32001}, {"max_tokens": 1.5}, {"reasoning_effort": "max"}, {"seed": "1"},
                {"top_p": 0.9}, ["temperature"], {"temperature": float("nan")}):
        with pytest.raises(errors.BadRequest):
            fields.model_params(bad)
