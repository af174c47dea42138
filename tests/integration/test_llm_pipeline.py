"""A tenant's saved key and active model reach that tenant's questions, and no one else's."""

from __future__ import annotations

import pytest

from tests.integration.pipeline_fixtures import SERVER_KEY
from tests.scripted_llm import install_scripted_llm

ALICE_KEY = "sk-alice-saved-key-0123456789abcdef"


@pytest.fixture(scope="module")
def scripted_models():
    """Where a ``scripted`` key is checked (its model list): a loopback server that accepts only alice's key."""
    from tests.model_server import ModelServer, Reply

    with ModelServer(lambda agent, messages: Reply("unused"), accepted_keys={ALICE_KEY}) as server:
        yield server


@pytest.fixture
def extra_settings(scripted_models):
    return {"llm_key_check_urls": f"scripted={scripted_models.url}"}


@pytest.fixture
def sales(pipeline):
    for user in ("alice", "bob"):
        pipeline.upload("sales", user=user)
    return pipeline


def keys_used(analyst) -> set:
    used = {key for _, _, key in analyst.calls}
    analyst.calls.clear()
    return used


def test_a_saved_key_answers_its_tenants_questions_and_only_theirs(sales, analyst):
    saved = sales.call("POST", "/api/v1/llm/keys", json={"provider": "scripted", "api_key": ALICE_KEY})
    assert saved.status_code == 201, saved.get_json()
    assert sales.wait(sales.ask("Revenue by region?")["query_id"])["status"] == "succeeded"
    assert keys_used(analyst) == {ALICE_KEY}
    bob = sales.ask("Revenue by region?", user="bob")
    assert sales.wait(bob["query_id"], user="bob")["status"] == "succeeded"
    assert keys_used(analyst) == {SERVER_KEY}
    request_key = "sk-request-own-key-0123456789zz"
    sales.wait(sales.ask("Revenue by region, again?", apiKey=request_key)["query_id"])
    assert keys_used(analyst) == {request_key}  # the request's own key still wins
    sales.call("DELETE", "/api/v1/llm/keys/scripted")
    sales.wait(sales.ask("Revenue by region, once more?")["query_id"])
    assert keys_used(analyst) == {SERVER_KEY}


def test_the_active_model_answers_questions_that_name_none(sales, analyst):
    install_scripted_llm().respond("scripted/primary", analyst)
    chosen = sales.call("PUT", "/api/v1/llm/active", json={"provider": "scripted", "model": "scripted/primary"})
    assert chosen.status_code == 200, chosen.get_json()
    alice = sales.wait(sales.ask("Revenue by region?")["query_id"])
    assert alice["answer"]["provenance"]["models"] == ["scripted/primary"]
    bob = sales.wait(sales.ask("Revenue by region?", user="bob")["query_id"], user="bob")
    assert bob["answer"]["provenance"]["models"] == ["scripted/model"]
    named = sales.wait(sales.ask("Revenue by region, named?", model="scripted/model")["query_id"])
    assert named["answer"]["provenance"]["models"] == ["scripted/model"]


def test_the_original_frontends_flow_uses_the_key_it_validated(sales, analyst):
    validated = sales.call("POST", "/validate-key", user="",
                           json={"provider": "SCRIPTED", "apiKey": ALICE_KEY, "userId": "alice"}).get_json()
    assert validated["valid"] and validated["models"] and validated["token"]
    saved = sales.call("POST", "/set-active-config", user="",
                       json={"userId": "alice", "provider": "SCRIPTED", "selectedModel": validated["models"][0]})
    assert saved.get_json()["saved"] is True
    install_scripted_llm().respond(validated["models"][0], analyst)
    answer = sales.call("POST", "/query", user="", json={
        "domain": "sales", "prompt": "Compare revenue by region", "session_id": "1732100000000",
        "includeInsight": True, "provider": "SCRIPTED", "model": validated["models"][0], "userId": "alice"})
    assert answer.status_code == 200, answer.get_json()
    assert keys_used(analyst) == {ALICE_KEY}


def test_the_active_choices_parameters_reach_its_models_calls(sales, analyst):
    script = install_scripted_llm()
    chosen = sales.call("PUT", "/api/v1/llm/active", json={"provider": "scripted", "model": "scripted/model",
                                                             "params": {"temperature": 0.7, "seed": 42}})
    assert chosen.status_code == 200, chosen.get_json()
    sales.wait(sales.ask("Revenue by region?")["query_id"])
    params = [call.params for call in script.calls]
    assert params and all(p.get("temperature") == 0.7 and p.get("seed") == 42 for p in params)
    script.reset()
    script.respond("scripted/model", analyst)
    sales.wait(sales.ask("Revenue by region?", user="bob")["query_id"], user="bob")
    assert all(call.params.get("seed") != 42 for call in script.calls)  # bob has no active choice


def test_an_api_base_on_a_private_network_is_refused_outside_local(sales, analyst):
    from common.hosts import HostNotAllowed
    from common.services.pipeline.request import check_api_base_host

    cloud = sales.context.settings.replace(environment="prod", auth_mode="gateway")
    with pytest.raises(HostNotAllowed, match="LLM_ALLOWED_HOSTS"):
        check_api_base_host(cloud, "http://127.0.0.1:11434/v1")
    with pytest.raises(HostNotAllowed):
        check_api_base_host(cloud, "http://169.254.169.254/")
    check_api_base_host(cloud.replace(llm_allowed_hosts="127.0.0.1/32"), "http://127.0.0.1:11434/v1")
    check_api_base_host(sales.context.settings, "http://127.0.0.1:11434/v1")  # locally: anything
