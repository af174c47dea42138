"""The original API's key and registry routes, called as its frontend calls them (FRONTEND_CONTRACT.md §5.3 K1-K6).

The frontend sends no identity header: the caller is the ``userId`` it sends (AUTH_MODE=dev), and it reads one
flag (``valid``, ``updated``, ``deleted``, ``saved``) with ``error`` beside it, never the status.

Keys are checked before they are kept, by listing their models: the providers' list requests go to a model
server on loopback (LLM_KEY_CHECK_URLS), which knows the keys below and refuses any other.
"""

from __future__ import annotations

import json

import pytest

from tests.integration.conftest import use_settings
from tests.model_server import ModelServer, Reply

KEY = "AIzaSyD-legacy-secret-0123456789abcd"
NEW_KEY = "AIzaSyD-legacy-newer-0123456789EFGH"
OPENAI_KEY = "sk-proj-legacy-openai-0123456789ijkl"
WRONG_KEY = "AIzaSyD-legacy-wrong-0123456789zzzz"


@pytest.fixture(scope="module")
def providers():
    """The providers' model lists, on loopback: they accept the keys above and refuse any other."""
    with ModelServer(lambda agent, messages: Reply("unused"), accepted_keys={KEY, NEW_KEY, OPENAI_KEY}) as server:
        yield server


@pytest.fixture
def checked(keyed, providers):
    """The test's context, checking gemini and openai keys at the loopback providers."""
    providers.listings.clear()
    return use_settings(keyed, llm_key_check_urls=f"gemini={providers.url},openai={providers.url}")


@pytest.fixture
def frontend(client, checked):
    """Calls as the original frontend does: JSON bodies, no identity header."""

    def call(method: str, path: str, body=None, **kwargs):
        return client.open(path, method=method, json=body, **kwargs) if body is not None else \
            client.open(path, method=method, **kwargs)

    return call


def snapshot(context, user: str = "alice") -> list:
    return [(r.collection, r.key, r.revision, r.data) for collection in ("llm_keys", "llm_active")
            for r in context.metadata.list(collection, user)]


def test_the_registry_routes_list_lower_case_providers_litellm_routes(frontend):
    providers = frontend("GET", "/litellm/providers").get_json()
    assert "gemini" in providers["providers"] and "GEMINI" not in providers["providers"]
    assert providers["count"] == len(providers["providers"]) and providers["version"] != "unknown"
    registry = frontend("GET", "/llm/registry").get_json()
    assert registry["providers"] == providers["providers"]
    assert "gemini/gemini-2.5-flash" in registry["groups"]["gemini"]
    assert registry["counts"] == {"providers": len(registry["providers"]), "models": len(registry["models"])}
    models = frontend("GET", "/litellm/models")
    assert models.headers["Deprecation"] == "true"
    assert models.get_json()["groups"] == registry["groups"] and models.get_json()["count"] > 100


def test_the_configuration_page_flow_saves_a_key_and_an_active_model(frontend, keyed):
    assert frontend("GET", "/get-provider-keys?userId=alice").get_json() == {
        "items": [], "count": 0, "summary": "0 provider keys found"}
    validated = frontend("POST", "/validate-key", {"provider": "GEMINI", "apiKey": KEY, "userId": "alice"})
    body = validated.get_json()
    assert validated.status_code == 200 and body["valid"] is True and body["provider"] == "gemini"
    assert "gemini/gemini-2.5-flash" in body["models"] and body["token"].startswith("key_")
    assert not body["token"].startswith("gAAAA") and KEY not in body["token"]
    saved = frontend("POST", "/set-active-config",
                     {"userId": "alice", "provider": "GEMINI", "selectedModel": "gemini/gemini-2.5-flash"})
    assert saved.get_json() == {"saved": True, "provider": "gemini", "message": "Active provider set to gemini"}
    [item] = frontend("GET", "/get-provider-keys?userId=alice").get_json()["items"]
    assert item["id"] == "alice_gemini" and item["is_active"] is True
    assert item["selectedModel"] == "gemini/gemini-2.5-flash" and item["models"] == body["models"]
    assert item["updated_at"] and item["verbosity"] is None and item["seed"] is None
    assert keyed.metadata.get("llm_keys", "alice", "gemini").data["last4"] == "abcd"


def test_validating_another_provider_leaves_exactly_one_active(frontend):
    frontend("POST", "/validate-key", {"provider": "gemini", "apiKey": KEY, "userId": "alice"})
    frontend("POST", "/set-active-config", {"userId": "alice", "provider": "gemini",
                                            "selectedModel": "gemini/gemini-2.5-flash", "reasoning": "LOW"})
    frontend("POST", "/validate-key", {"provider": "OpenAI", "apiKey": OPENAI_KEY, "userId": "alice"})
    items = frontend("GET", "/get-provider-keys?userId=alice").get_json()["items"]
    assert {item["provider"]: item["is_active"] for item in items} == {"gemini": False, "openai": True}
    assert [item["selectedModel"] for item in items] == [None, None]  # the new provider's model is not chosen yet
    frontend("POST", "/validate-key", {"provider": "openai", "apiKey": OPENAI_KEY, "userId": "alice"})
    frontend("POST", "/set-active-config", {"userId": "alice", "provider": "openai", "selectedModel": "gpt-4o",
                                            "reasoning": "High", "seed": 7, "verbosity": "low"})
    openai = frontend("GET", "/get-provider-keys?userId=alice").get_json()["items"][1]
    assert (openai["selectedModel"], openai["reasoning"], openai["seed"], openai["verbosity"]) == (
        "openai/gpt-4o", "high", 7, "low")


def test_a_key_is_updated_and_deleted_with_a_json_body_on_delete(frontend, keyed):
    frontend("POST", "/validate-key", {"provider": "gemini", "apiKey": KEY, "userId": "alice"})
    updated = frontend("PUT", "/update-provider-key", {"userId": "alice", "provider": "Gemini", "apiKey": NEW_KEY})
    assert updated.get_json()["updated"] is True and updated.get_json()["models"]
    assert keyed.metadata.get("llm_keys", "alice", "gemini").data["last4"] == "EFGH"
    deleted = frontend("DELETE", "/delete-provider-key", {"userId": "alice", "provider": "GEMINI"})
    assert deleted.status_code == 200 and deleted.get_json() == {"deleted": True}
    again = frontend("DELETE", "/delete-provider-key", {"userId": "alice", "provider": "gemini"})
    assert again.status_code == 404 and again.get_json() == {"error": "Key not found"}
    assert frontend("GET", "/get-provider-keys?userId=alice").get_json()["count"] == 0


def test_another_user_cannot_read_or_change_a_users_keys(frontend, client):
    frontend("POST", "/validate-key", {"provider": "gemini", "apiKey": KEY, "userId": "alice"})
    assert frontend("GET", "/get-provider-keys?userId=bob").get_json()["count"] == 0
    as_bob = {"X-User-Id": "bob"}
    for method, path, body in (("GET", "/get-provider-keys?userId=alice", None),
                               ("DELETE", "/delete-provider-key", {"userId": "alice", "provider": "gemini"}),
                               ("PUT", "/update-provider-key", {"userId": "alice", "provider": "gemini",
                                                                "apiKey": NEW_KEY})):
        assert frontend(method, path, body, headers=as_bob).status_code == 403
    assert frontend("DELETE", "/delete-provider-key", {"userId": "bob", "provider": "gemini"}).status_code == 404
    [item] = frontend("GET", "/get-provider-keys?userId=alice").get_json()["items"]
    assert item["id"] == "alice_gemini"


def test_no_response_carries_the_key_or_its_ciphertext(frontend, keyed, caplog):
    caplog.set_level("DEBUG")
    bodies = [frontend("POST", "/validate-key", {"provider": "gemini", "apiKey": KEY, "userId": "alice"}),
              frontend("PUT", "/update-provider-key", {"userId": "alice", "provider": "gemini", "apiKey": KEY}),
              frontend("GET", "/get-provider-keys?userId=alice")]
    ciphertext = keyed.metadata.get("llm_keys", "alice", "gemini").data["ciphertext"]
    for secret in (KEY, ciphertext):
        assert all(secret not in body.get_data(as_text=True) for body in bodies)
        assert secret not in caplog.text


BAD_REQUESTS = [
    ("POST", "/validate-key", {"provider": "gemini", "userId": "alice"}, 400, "valid",
     "Missing provider, apiKey, or userId"),
    ("POST", "/validate-key", {"provider": "gemini", "apiKey": KEY}, 400, "valid",
     "Missing provider, apiKey, or userId"),
    ("POST", "/validate-key", {"provider": "NOPE", "apiKey": KEY, "userId": "alice"}, 400, "valid",
     "Provider not supported: NOPE"),
    ("POST", "/validate-key", {"provider": "gemini", "apiKey": "test-key-1234", "userId": "alice"}, 400, "valid",
     None),
    ("POST", "/validate-key", {"provider": "gemini", "apiKey": 12345678901, "userId": "alice"}, 400, "valid", None),
    ("POST", "/validate-key", {"provider": "hosted_vllm", "apiKey": KEY, "userId": "alice"}, 400, "valid", None),
    ("POST", "/validate-key", {"provider": "gemini", "apiKey": KEY, "userId": "alice",
                               "pad": "x" * (1024 * 1024)}, 413, "valid", None),
    ("POST", "/validate-key", "{not json", 400, "valid", None),
    ("PUT", "/update-provider-key", {"userId": "alice", "provider": "gemini"}, 400, "updated", "Missing fields"),
    ("PUT", "/update-provider-key", {"userId": "alice", "provider": "gemini", "apiKey": "short"}, 400, "updated",
     None),
    ("PUT", "/update-provider-key", {"userId": "alice", "provider": "nope", "apiKey": NEW_KEY}, 400, "updated",
     None),
    ("DELETE", "/delete-provider-key", {"userId": "alice"}, 400, None, "Missing userId or provider"),
    ("DELETE", "/delete-provider-key", {"userId": "alice", "provider": "openai"}, 404, None, "Key not found"),
    ("DELETE", "/delete-provider-key", None, 400, None, None),
    ("GET", "/get-provider-keys", None, 400, None, "Missing userId"),
    ("POST", "/set-active-config", {"userId": "alice"}, 400, "saved", "Missing userId or provider"),
    ("POST", "/set-active-config", {"userId": "alice", "provider": "nope"}, 400, "saved", None),
    ("POST", "/set-active-config", {"userId": "alice", "provider": "gemini", "selectedModel": "openai/gpt-4o"},
     400, "saved", None),
    ("POST", "/set-active-config", {"userId": "alice", "provider": "gemini", "reasoning": "extreme"}, 400, "saved",
     None),
    ("POST", "/set-active-config", {"userId": "alice", "provider": "gemini", "seed": "seven"}, 400, "saved", None),
    ("POST", "/litellm/providers", {}, 405, None, None),
    ("DELETE", "/litellm/models", None, 405, None, None),
    ("PUT", "/llm/registry", {}, 405, None, None),
]


@pytest.mark.parametrize("method, path, body, status, flag, message", BAD_REQUESTS)
def test_bad_input_answers_the_flag_shape_and_changes_nothing(frontend, keyed, method, path, body, status, flag,
                                                              message):
    frontend("POST", "/validate-key", {"provider": "gemini", "apiKey": KEY, "userId": "alice"})
    frontend("POST", "/set-active-config", {"userId": "alice", "provider": "gemini",
                                            "selectedModel": "gemini/gemini-2.5-flash"})
    before = snapshot(keyed)
    if isinstance(body, str):
        response = frontend(method, path, data=body, content_type="application/json")
    else:
        response = frontend(method, path, body)
    assert response.status_code == status, response.get_data(as_text=True)
    answer = response.get_json()
    if status == 405:  # no route matched, so no route's shape: the original API's {"detail"}
        assert answer["detail"]
    else:
        assert set(answer) == ({flag, "error"} if flag else {"error"}) and answer["error"]
        assert flag is None or answer[flag] is False
        assert message is None or answer["error"] == message
    assert snapshot(keyed) == before
    assert KEY not in json.dumps(answer)


def test_a_key_the_provider_refuses_is_not_kept_and_the_working_one_stays(frontend, keyed, providers):
    frontend("POST", "/validate-key", {"provider": "gemini", "apiKey": KEY, "userId": "alice"})
    before = snapshot(keyed)
    refused = frontend("POST", "/validate-key", {"provider": "GEMINI", "apiKey": WRONG_KEY, "userId": "alice"})
    assert refused.status_code == 400
    assert refused.get_json() == {"valid": False, "error": "the provider (gemini) refused this key (HTTP 401)"}
    updated = frontend("PUT", "/update-provider-key", {"userId": "alice", "provider": "gemini", "apiKey": WRONG_KEY})
    assert updated.status_code == 400 and updated.get_json()["updated"] is False
    assert snapshot(keyed) == before and keyed.metadata.get("llm_keys", "alice", "gemini").data["last4"] == "abcd"
    # Gemini's way: the key in its header, never in the URL (where logs and proxies would keep it).
    assert [(listing.path, listing.key) for listing in providers.listings] == [
        ("/v1/models", KEY), ("/v1/models", WRONG_KEY), ("/v1/models", WRONG_KEY)]


def test_an_unreachable_provider_is_not_valid_and_says_so(frontend, checked, keyed):
    use_settings(checked, llm_key_check_urls="gemini=http://127.0.0.1:1/v1")  # nothing listens on port 1
    response = frontend("POST", "/validate-key", {"provider": "gemini", "apiKey": KEY, "userId": "alice"})
    assert response.status_code == 502
    assert response.get_json()["valid"] is False and "could not be reached" in response.get_json()["error"]
    assert snapshot(keyed) == []


def test_a_provider_without_a_model_list_is_not_called_valid(frontend, keyed, providers):
    response = frontend("POST", "/validate-key", {"provider": "perplexity", "apiKey": KEY, "userId": "alice"})
    assert response.status_code == 400
    assert response.get_json()["valid"] is False and "cannot be checked" in response.get_json()["error"]
    assert snapshot(keyed) == [] and providers.listings == []


def test_with_an_endpoint_configured_its_own_chat_models_are_offered_and_accepted(frontend, checked, keyed,
                                                                                 providers):
    use_settings(checked, llm_api_base=providers.url)  # LLM_API_BASE: every provider's calls go there
    validated = frontend("POST", "/validate-key", {"provider": "OPENAI", "apiKey": OPENAI_KEY, "userId": "alice"})
    served = ["openai/llama3.1:8b", "openai/meta-llama/Llama-3.1-8B-Instruct"]  # not its embedding model
    assert validated.get_json()["valid"] is True and validated.get_json()["models"] == served
    assert providers.listings[-1] == ("/v1/models", OPENAI_KEY)
    for model in (served[1], "llama3.1:8b"):
        saved = frontend("POST", "/set-active-config", {"userId": "alice", "provider": "openai",
                                                        "selectedModel": model})
        assert saved.get_json()["saved"] is True, saved.get_json()
    [item] = frontend("GET", "/get-provider-keys?userId=alice").get_json()["items"]
    assert item["models"] == served and item["selectedModel"] == "openai/llama3.1:8b"
    for model in ("openai/gpt-4o", "openai/nomic-embed-text", "openai/container"):  # not served, or not chat
        refused = frontend("POST", "/set-active-config", {"userId": "alice", "provider": "openai",
                                                          "selectedModel": model})
        assert refused.status_code == 400 and refused.get_json()["saved"] is False
    assert keyed.metadata.get("llm_active", "alice", "active").data["model"] == "openai/llama3.1:8b"


def test_an_endpoint_that_refuses_the_key_keeps_it_out(frontend, checked, keyed, providers):
    use_settings(checked, llm_api_base=providers.url)
    response = frontend("POST", "/validate-key", {"provider": "openai", "apiKey": WRONG_KEY, "userId": "alice"})
    assert response.get_json() == {"valid": False, "error": "the endpoint refused this key (HTTP 401)"}
    assert snapshot(keyed) == []


def test_checking_keys_counts_against_the_query_rate_limit(frontend, checked, keyed, providers):
    use_settings(checked, rate_limits="query=2/minute")
    for _ in range(2):
        assert frontend("POST", "/validate-key", {"provider": "gemini", "apiKey": KEY, "userId": "alice"}) \
            .get_json()["valid"] is True
    limited = frontend("PUT", "/update-provider-key", {"userId": "alice", "provider": "gemini", "apiKey": NEW_KEY})
    assert limited.status_code == 429 and limited.get_json()["updated"] is False
    assert len(providers.listings) == 2  # the third was refused before the provider was asked
    assert keyed.metadata.get("llm_keys", "alice", "gemini").data["last4"] == "abcd"
