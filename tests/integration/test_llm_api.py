"""The `llm` function: registry, saved keys (masked, encrypted, per tenant), verification and the active model."""

from __future__ import annotations

import json
import logging

import pytest

from common import bootstrap
from tests.integration.conftest import Api, assert_error, use_settings
from tests.model_server import ModelServer
from tests.model_server import Reply as ServerReply
from tests.scripted_llm import Fault, Reply, install_scripted_llm

KEY = "AIzaSyD-alice-secret-0123456789wxyz"
OTHER_KEY = "AIzaSyD-alice-second-0123456789QRST"


@pytest.fixture
def alice(client, keyed) -> Api:
    return Api(client, "alice")


@pytest.fixture
def bob(client, keyed) -> Api:
    return Api(client, "bob")


def post_key(api: Api, body: dict, query: str = ""):
    return api.request("POST", f"/api/v1/llm/keys{query}", json=body)


def snapshot(context, user: str = "alice") -> list:
    """Everything stored about a user's LLM configuration, revisions included."""
    return [(r.collection, r.key, r.revision, r.data) for collection in ("llm_keys", "llm_active")
            for r in context.metadata.list(collection, user)]


def test_providers_and_models_come_from_litellms_map(alice):
    providers = alice.get("/api/v1/llm/providers").get_json()
    by_id = {item["provider"]: item for item in providers["items"]}
    assert by_id["gemini"]["models"] > 0 and not by_id["gemini"]["needs_api_base"]
    assert by_id["hosted_vllm"]["needs_api_base"] and "GEMINI" not in by_id
    models = alice.get("/api/v1/llm/models?provider=GEMINI").get_json()
    assert models["provider"] == "gemini" and "gemini/gemini-2.5-flash" in models["items"]
    assert models["count"] == by_id["gemini"]["models"]
    everything = alice.get("/api/v1/llm/models").get_json()
    assert everything["count"] > models["count"] and "openai/gpt-4o" in everything["items"]


def test_a_key_is_saved_shown_masked_replaced_and_deleted(alice):
    created = post_key(alice, {"provider": "Gemini", "api_key": KEY})
    assert created.status_code == 201, created.get_json()
    view = created.get_json()
    assert view["provider"] == "gemini" and view["last4"] == "…wxyz" and view["api_base"] is None
    assert view["is_active"] is False and view["model"] is None and view["created_at"]
    assert alice.get("/api/v1/llm/keys").get_json() == {"items": [view], "count": 1}
    assert alice.get("/api/v1/llm/keys/GEMINI").get_json() == view
    replaced = alice.request("PUT", "/api/v1/llm/keys/gemini", json={"api_key": OTHER_KEY})
    assert replaced.status_code == 200 and replaced.get_json()["last4"] == "…QRST"
    assert post_key(alice, {"provider": "gemini", "api_key": KEY}).status_code == 409
    assert alice.delete("/api/v1/llm/keys/gemini").get_json() == {"deleted": True, "provider": "gemini"}
    assert alice.get("/api/v1/llm/keys/gemini").status_code == 404
    assert alice.delete("/api/v1/llm/keys/gemini").status_code == 404


def test_an_openai_compatible_server_needs_its_endpoint_and_may_have_no_key(alice):
    assert post_key(alice, {"provider": "hosted_vllm", "api_key": KEY}).status_code == 400
    saved = post_key(alice, {"provider": "hosted_vllm", "api_base": "http://vllm.internal:8000/v1"})
    assert saved.status_code == 201 and saved.get_json()["last4"] is None
    assert saved.get_json()["api_base"] == "http://vllm.internal:8000/v1"


def test_the_active_choice_is_one_provider_and_its_model(alice):
    post_key(alice, {"provider": "gemini", "api_key": KEY})
    chosen = alice.request("PUT", "/api/v1/llm/active", json={"provider": "GEMINI", "model": "gemini-2.5-flash",
                                                             "params": {"temperature": 0.2, "seed": 3}})
    assert chosen.status_code == 200, chosen.get_json()
    assert chosen.get_json()["model"] == "gemini/gemini-2.5-flash"
    assert alice.get("/api/v1/llm/active").get_json()["params"] == {"temperature": 0.2, "seed": 3}
    [item] = alice.get("/api/v1/llm/keys").get_json()["items"]
    assert item["is_active"] and item["model"] == "gemini/gemini-2.5-flash"
    alice.request("PUT", "/api/v1/llm/active", json={"provider": "openai", "model": "openai/gpt-4o"})
    assert alice.get("/api/v1/llm/keys").get_json()["items"][0]["is_active"] is False
    assert alice.delete("/api/v1/llm/active").get_json() == {"deleted": True}
    assert alice.get("/api/v1/llm/active").status_code == 404


def test_deleting_the_active_providers_key_clears_the_choice(alice):
    post_key(alice, {"provider": "gemini", "api_key": KEY})
    alice.request("PUT", "/api/v1/llm/active", json={"provider": "gemini", "model": "gemini/gemini-2.5-flash"})
    alice.delete("/api/v1/llm/keys/gemini")
    assert alice.get("/api/v1/llm/active").status_code == 404


def test_tenants_never_see_or_touch_each_others_keys(alice, bob, keyed):
    post_key(alice, {"provider": "gemini", "api_key": KEY})
    alice.request("PUT", "/api/v1/llm/active", json={"provider": "gemini", "model": "gemini/gemini-2.5-flash"})
    assert bob.get("/api/v1/llm/keys").get_json() == {"items": [], "count": 0}
    assert bob.get("/api/v1/llm/keys/gemini").status_code == 404
    assert bob.delete("/api/v1/llm/keys/gemini").status_code == 404
    assert bob.request("PUT", "/api/v1/llm/keys/gemini", json={"api_key": OTHER_KEY}).status_code == 404
    assert bob.get("/api/v1/llm/active").status_code == 404
    assert post_key(bob, {"provider": "gemini", "api_key": OTHER_KEY}).status_code == 201
    assert alice.get("/api/v1/llm/keys/gemini").get_json()["last4"] == "…wxyz"


def test_neither_the_key_nor_its_ciphertext_appears_in_a_response_or_a_log(alice, keyed, caplog):
    caplog.set_level(logging.DEBUG)
    bodies = [post_key(alice, {"provider": "gemini", "api_key": KEY}).get_data(as_text=True)]
    stored = keyed.metadata.get("llm_keys", "alice", "gemini").data
    assert KEY not in json.dumps(stored)  # encrypted at rest
    for method, path in (("GET", "/api/v1/llm/keys"), ("GET", "/api/v1/llm/keys/gemini"),
                         ("GET", "/get-provider-keys?userId=alice")):
        bodies.append(alice.request(method, path).get_data(as_text=True))
    bodies.append(alice.request("PUT", "/api/v1/llm/keys/gemini", json={"api_key": KEY}).get_data(as_text=True))
    bodies.append(post_key(alice, {"provider": "gemini", "api_key": KEY}).get_data(as_text=True))  # 409
    ciphertexts = [stored["ciphertext"], keyed.metadata.get("llm_keys", "alice", "gemini").data["ciphertext"]]
    for secret in (KEY, *ciphertexts):
        assert all(secret not in body for body in bodies)
        assert secret not in caplog.text


@pytest.fixture
def script():
    script = install_scripted_llm()
    script.reset()
    yield script
    script.reset()


def test_verify_makes_one_minimal_call_with_the_key_then_saves_it(alice, script):
    script.queue("*", Reply("ok"))
    response = post_key(alice, {"provider": "scripted", "api_key": KEY}, "?verify=true")
    assert response.status_code == 201, response.get_json()
    [call] = script.calls
    assert call.api_key == KEY and call.params.get("max_tokens") == 1
    assert response.get_json()["verified_with"] == call.model
    script.queue("scripted/primary", Reply("ok"))
    chosen = alice.request("PUT", "/api/v1/llm/keys/scripted?verify=true",
                           json={"api_key": OTHER_KEY, "model": "scripted/primary"})
    assert chosen.status_code == 200 and chosen.get_json()["verified_with"] == "scripted/primary"


@pytest.mark.parametrize("fault, status, message", [("auth", 400, "the provider refused this key"),
                                                    ("connection", 502, "could not be reached"),
                                                    ("server_error", 502, "could not be reached")])
def test_a_refused_or_unreachable_verification_saves_nothing(alice, keyed, script, fault, status, message):
    script.queue("*", Fault(fault))
    response = post_key(alice, {"provider": "scripted", "api_key": KEY}, "?verify=true")
    assert response.status_code == status and message in response.get_json()["error"]["message"]
    assert KEY not in response.get_data(as_text=True)
    assert len(script.calls) == 1 and snapshot(keyed) == []


def _oversize() -> dict:
    return {"provider": "gemini", "api_key": KEY, "padding": "x" * (1024 * 1024 + 10)}


BAD_REQUESTS = [
    ("POST", "/api/v1/llm/providers", None, 405),
    ("GET", "/api/v1/llm/models?provider=nope", None, 400),
    ("GET", "/api/v1/llm/models?provider=" + "x" * 300, None, 400),
    ("POST", "/api/v1/llm/keys", {"api_key": KEY}, 400),
    ("POST", "/api/v1/llm/keys", {"provider": "nope", "api_key": KEY}, 400),
    ("POST", "/api/v1/llm/keys", {"provider": "gemini"}, 400),
    ("POST", "/api/v1/llm/keys", {"provider": "gemini", "api_key": 12345678}, 400),
    ("POST", "/api/v1/llm/keys", {"provider": ["gemini"], "api_key": KEY}, 400),
    ("POST", "/api/v1/llm/keys", {"provider": "gemini", "api_key": "your-api-key"}, 400),
    ("POST", "/api/v1/llm/keys", {"provider": "gemini", "api_key": "has space 0123456789"}, 400),
    ("POST", "/api/v1/llm/keys", {"provider": "gemini", "api_key": "k" * 600}, 400),
    ("POST", "/api/v1/llm/keys", {"provider": "gemini", "api_key": KEY, "api_base": "ftp://x/y"}, 400),
    ("POST", "/api/v1/llm/keys", {"provider": "gemini", "api_key": KEY, "api_base": "http://u:p@h/v1"}, 400),
    ("POST", "/api/v1/llm/keys", {"provider": "gemini", "api_key": KEY, "model": "openai/gpt-4o"}, 400),
    ("POST", "/api/v1/llm/keys?verify=maybe", {"provider": "gemini", "api_key": KEY}, 400),
    ("POST", "/api/v1/llm/keys", {"provider": "gemini", "api_key": OTHER_KEY}, 409),
    ("POST", "/api/v1/llm/keys", _oversize(), 413),
    ("POST", "/api/v1/llm/keys", "not json", 400),
    ("POST", "/api/v1/llm/keys", ["gemini", KEY], 400),
    ("GET", "/api/v1/llm/keys/openai", None, 404),
    ("PUT", "/api/v1/llm/keys/openai", {"api_key": OTHER_KEY}, 404),
    ("PUT", "/api/v1/llm/keys/nope", {"api_key": OTHER_KEY}, 400),
    ("PUT", "/api/v1/llm/keys/gemini", {"api_key": "changeme"}, 400),
    ("PUT", "/api/v1/llm/keys/gemini", {"provider": "openai", "api_key": OTHER_KEY}, 400),
    ("PUT", "/api/v1/llm/keys/gemini", {}, 400),
    ("DELETE", "/api/v1/llm/keys/openai", None, 404),
    ("PUT", "/api/v1/llm/active", {"provider": "gemini"}, 400),
    ("PUT", "/api/v1/llm/active", {"provider": "nope", "model": "nope/x"}, 400),
    ("PUT", "/api/v1/llm/active", {"provider": "gemini", "model": "openai/gpt-4o"}, 400),
    ("PUT", "/api/v1/llm/active", {"provider": "gemini", "model": "gemini/no-such-model"}, 400),
    ("PUT", "/api/v1/llm/active", {"provider": "gemini", "model": "gemini-2.5-flash", "params": {"top_k": 3}}, 400),
    ("PUT", "/api/v1/llm/active", {"provider": "gemini", "model": "gemini-2.5-flash",
                                   "params": {"temperature": 3}}, 400),
    ("PUT", "/api/v1/llm/active", {"provider": "gemini", "model": "gemini-2.5-flash", "params": "hot"}, 400),
    ("PATCH", "/api/v1/llm/active", {"provider": "gemini"}, 405),
]


@pytest.mark.parametrize("method, path, body, status", BAD_REQUESTS)
def test_bad_input_is_a_4xx_in_the_error_shape_and_changes_nothing(alice, keyed, method, path, body, status):
    post_key(alice, {"provider": "gemini", "api_key": KEY})
    alice.request("PUT", "/api/v1/llm/active", json={"provider": "gemini", "model": "gemini/gemini-2.5-flash"})
    before = snapshot(keyed)
    if isinstance(body, str):
        response = alice.request(method, path, data=body, content_type="application/json")
    else:
        response = alice.request(method, path, json=body)
    assert response.status_code == status, response.get_json()
    error = response.get_json()["error"]
    assert set(error) == {"code", "message", "details"} and error["message"]
    assert snapshot(keyed) == before


@pytest.mark.parametrize("api_base", ["http://127.0.0.1:11434/v1", "http://169.254.169.254/", "http://[::1]:8000/v1"])
def test_outside_local_a_key_whose_endpoint_is_internal_is_refused_at_save(alice, keyed, api_base):

    bootstrap.use(bootstrap.build(keyed.settings.replace(environment="dev"), clock=keyed.clock, blobs=keyed.blobs,
                                  metadata=keyed.metadata))
    response = post_key(alice, {"provider": "hosted_vllm", "api_key": KEY, "api_base": api_base})
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "HOST_NOT_ALLOWED"
    assert "LLM_ALLOWED_HOSTS" in response.get_json()["error"]["message"]
    assert snapshot(keyed) == []


@pytest.fixture(scope="module")
def providers():
    """Model lists on loopback, for the providers' list requests and as an endpoint: they accept KEY only."""
    with ModelServer(lambda agent, messages: ServerReply("unused"), accepted_keys={KEY}) as server:
        yield server


def test_verify_lists_the_providers_models_with_the_key_and_spends_no_tokens(alice, keyed, providers):
    providers.listings.clear()
    use_settings(keyed, llm_key_check_urls=f"gemini={providers.url}")
    refused = post_key(alice, {"provider": "gemini", "api_key": OTHER_KEY}, "?verify=true")
    assert assert_error(refused, 400, "KEY_REFUSED")["message"] == "the provider (gemini) refused this key (HTTP 401)"
    assert snapshot(keyed) == []
    saved = post_key(alice, {"provider": "gemini", "api_key": KEY}, "?verify=true")
    assert saved.status_code == 201 and saved.get_json()["verified_with"] == "list-models"
    assert saved.get_json()["models"] is None  # gemini's models are LiteLLM's map's
    assert [listing.key for listing in providers.listings] == [OTHER_KEY, KEY]
    assert "gemini/gemini-2.5-flash" in alice.get("/api/v1/llm/models?provider=gemini").get_json()["items"]


def test_verify_at_an_endpoint_keeps_the_chat_models_it_serves(alice, keyed, providers):
    body = {"provider": "hosted_vllm", "api_key": KEY, "api_base": providers.url}
    saved = post_key(alice, body, "?verify=true")
    served = ["hosted_vllm/llama3.1:8b", "hosted_vllm/meta-llama/Llama-3.1-8B-Instruct"]
    assert saved.status_code == 201 and saved.get_json()["models"] == served, saved.get_json()
    assert alice.get("/api/v1/llm/models?provider=hosted_vllm").get_json()["items"] == served
    chosen = alice.request("PUT", "/api/v1/llm/active", json={"provider": "hosted_vllm", "model": served[1]})
    assert chosen.status_code == 200 and chosen.get_json()["model"] == served[1]
    embedding = alice.request("PUT", "/api/v1/llm/active", json={"provider": "hosted_vllm",
                                                                 "model": "nomic-embed-text"})
    assert_error(embedding, 400, "INVALID_MODEL")
    # Replaced without a check, the key forgets its old endpoint's list.
    replaced = alice.request("PUT", "/api/v1/llm/keys/hosted_vllm", json=body)
    assert replaced.status_code == 200 and replaced.get_json()["models"] is None


def test_with_llm_api_base_an_openai_key_is_checked_there_and_its_models_accepted(alice, keyed, providers):
    use_settings(keyed, llm_api_base=providers.url)
    assert post_key(alice, {"provider": "openai", "api_key": KEY}).status_code == 201
    not_listed = alice.request("PUT", "/api/v1/llm/active", json={"provider": "openai", "model": "llama3.1:8b"})
    assert_error(not_listed, 400, "INVALID_MODEL")  # unchecked: LiteLLM's map is all that is known
    checked = alice.request("PUT", "/api/v1/llm/keys/openai?verify=true", json={"api_key": KEY})
    assert checked.get_json()["models"] == ["openai/llama3.1:8b", "openai/meta-llama/Llama-3.1-8B-Instruct"]
    chosen = alice.request("PUT", "/api/v1/llm/active", json={"provider": "openai", "model": "llama3.1:8b"})
    assert chosen.status_code == 200 and chosen.get_json()["model"] == "openai/llama3.1:8b"


def test_only_a_verified_save_counts_against_the_query_rate_limit(alice, keyed, providers):
    use_settings(keyed, llm_key_check_urls=f"gemini={providers.url}", rate_limits="query=1/minute")
    assert post_key(alice, {"provider": "gemini", "api_key": KEY}, "?verify=true").status_code == 201
    providers.listings.clear()
    limited = alice.request("PUT", "/api/v1/llm/keys/gemini?verify=1", json={"api_key": KEY})
    assert_error(limited, 429, "RATE_LIMITED")
    assert providers.listings == []
    assert alice.request("PUT", "/api/v1/llm/keys/gemini", json={"api_key": KEY}).status_code == 200
