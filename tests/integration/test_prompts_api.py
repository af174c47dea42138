"""The prompts API through the emulator's gateway: the effective prompts, admin overrides that the next question
uses (checked before they are stored, versioned, reverted), and each tenant's configuration layers.

Questions run through the real pipeline with scripted models, so a test can read the system prompt a model got.
"""

from __future__ import annotations

import pytest

from common.clock import FakeClock
from common.prompts import SHIPPED_PROMPTS, FilePromptCatalog, load_prompts
from common.prompts.overrides import COLLECTION, GLOBAL_TENANT, OverridingCatalog
from tests.integration.conftest import assert_error

ADMIN = "root"
MARKER = "Always name the region with the highest revenue first."


@pytest.fixture
def api(pipeline):
    """The pipeline's client, with ADMIN_USERS=root on the instance."""
    settings = pipeline.context.settings.replace(admin_users=(ADMIN,))
    pipeline.context.settings = settings
    return pipeline


def planner_override(**changes) -> dict:
    """The shipped planner prompt as a PUT body, with the marker added to its system prompt."""
    body = load_prompts()["planner"].to_dict()
    body["system"] = body["system"].rstrip() + "\n\n" + MARKER + "\n"
    return {**body, **changes}


def overrides_stored(api) -> list:
    return api.context.metadata.list(COLLECTION, GLOBAL_TENANT)


def planner_system_prompts(analyst) -> list[str]:
    return [messages[0]["content"] for agent, messages, _ in analyst.calls if agent == "planner"]


def test_the_list_shows_every_shipped_prompt_from_its_file(api):
    items = api.call("GET", "/api/v1/prompts").get_json()["items"]
    files = load_prompts()
    assert [item["name"] for item in items] == sorted(SHIPPED_PROMPTS)
    for item in items:
        assert item == {"name": item["name"], "version": files[item["name"]].version, "source": "file",
                        "description": files[item["name"]].description}


def test_a_prompt_comes_with_its_version_source_and_the_callers_configuration(api):
    body = api.call("GET", "/api/v1/prompts/planner?domain=Sales").get_json()
    assert (body["name"], body["source"], body["version"], body["file_version"]) == ("planner", "file", 1, 1)
    assert body["template"] == load_prompts()["planner"].to_dict() and body["versions"] == []
    assert body["domain"] == "sales"
    assert body["configuration"]["parameters"]["language"] == {"value": "en", "source": "system"}
    assert_error(api.call("GET", "/api/v1/prompts/nope"), 404)
    assert_error(api.call("GET", "/api/v1/prompts/planner?domain=.."), 400, "INVALID_NAME")


def test_only_admins_may_change_a_prompt(api):
    assert_error(api.call("PUT", "/api/v1/prompts/planner", json=planner_override()), 403, "NOT_ADMIN")
    assert_error(api.call("DELETE", "/api/v1/prompts/planner"), 403, "NOT_ADMIN")
    assert overrides_stored(api) == []
    assert api.call("GET", "/api/v1/prompts/planner").get_json()["source"] == "file"


def _unknown_input() -> dict:
    body = planner_override()
    body["inputs"] = {**body["inputs"], "secret_sauce": "something callers never send"}
    body["user_template"] += "\n${secret_sauce}"
    return body


@pytest.mark.parametrize("body,status,fragment", [
    (planner_override(system=planner_override()["system"] + "${nope}"), 400, "${nope} is not declared in inputs"),
    (_unknown_input(), 400, "unknown input(s) secret_sauce"),
    (planner_override(output={"format": "markdown"}), 400, "the output must stay as shipped"),
    (planner_override(system="Decide the scope.\n" + MARKER), 400, "must begin with 'You are the Planner'"),
    ({k: v for k, v in planner_override().items() if k != "system"}, 400, "missing field(s) system"),
    (planner_override(model={"temperature": "hot"}), 400, "model.temperature"),
    (planner_override(name="analyst"), 400, "names prompt 'analyst'"),
    (planner_override(description="x" * 40_000), 413, "at most"),
    (["not", "an", "object"], 400, "must be an object"),
])
def test_a_bad_override_is_refused_naming_the_problem_and_nothing_is_stored(api, body, status, fragment):
    error = assert_error(api.call("PUT", "/api/v1/prompts/planner", json=body, headers={"X-User-Id": ADMIN}), status)
    assert fragment in error["message"]
    assert overrides_stored(api) == []
    assert api.call("GET", "/api/v1/prompts/planner").get_json()["source"] == "file"


@pytest.mark.parametrize("method,path,kwargs,status", [
    ("PUT", "/api/v1/prompts/planner", {"data": "{not json", "content_type": "application/json"}, 400),
    ("PUT", "/api/v1/prompts/planner", {}, 400),
    ("PUT", "/api/v1/prompts/nope", {"json": {}}, 404),
    ("DELETE", "/api/v1/prompts/planner", {}, 404),  # no override to revert
    ("DELETE", "/api/v1/prompts/nope", {}, 404),
    ("POST", "/api/v1/prompts/planner", {"json": {}}, 405),
])
def test_bad_admin_requests_are_4xx_and_change_nothing(api, method, path, kwargs, status):
    assert_error(api.call(method, path, user=ADMIN, **kwargs), status)
    assert overrides_stored(api) == []


def test_an_override_bumps_the_version_and_the_next_question_uses_it(api, analyst):
    api.upload("sales")
    assert api.call("GET", "/api/v1/prompts/planner").get_json()["source"] == "file"  # now cached on this instance
    saved = api.call("PUT", "/api/v1/prompts/planner", user=ADMIN, json=planner_override(version=99))
    assert saved.status_code == 200, saved.get_json()
    assert (saved.get_json()["version"], saved.get_json()["source"]) == (2, "override")  # the file's + 1
    body = api.call("GET", "/api/v1/prompts/planner").get_json()
    assert (body["source"], body["version"], body["file_version"]) == ("override", 2, 1)
    assert MARKER in body["template"]["system"]
    assert [(v["version"], v["saved_by"]) for v in body["versions"]] == [(2, ADMIN)]
    listed = {item["name"]: item for item in api.call("GET", "/api/v1/prompts").get_json()["items"]}
    assert (listed["planner"]["source"], listed["analyst"]["source"]) == ("override", "file")

    answer = api.wait(api.ask("Compare revenue by region")["query_id"])["answer"]
    assert MARKER in planner_system_prompts(analyst)[-1]
    assert answer["provenance"]["prompt_versions"]["planner"] == 2
    again = api.call("PUT", "/api/v1/prompts/planner", user=ADMIN, json=planner_override())
    assert again.get_json()["version"] == 3


def test_delete_reverts_to_the_file_and_versions_never_repeat(api, analyst):
    api.upload("sales")
    assert api.call("PUT", "/api/v1/prompts/planner", user=ADMIN, json=planner_override()).status_code == 200
    reverted = api.call("DELETE", "/api/v1/prompts/planner", user=ADMIN)
    assert reverted.get_json() == {"name": "planner", "reverted": True, "version": 1, "source": "file"}
    body = api.call("GET", "/api/v1/prompts/planner").get_json()
    assert (body["source"], body["version"]) == ("file", 1) and MARKER not in body["template"]["system"]
    api.wait(api.ask("Compare revenue by region")["query_id"])
    assert MARKER not in planner_system_prompts(analyst)[-1]
    assert_error(api.call("DELETE", "/api/v1/prompts/planner", user=ADMIN), 404, "NO_OVERRIDE")
    # A later override is a new version: the number 2 already named a text.
    assert api.call("PUT", "/api/v1/prompts/planner", user=ADMIN, json=planner_override()).get_json()["version"] == 3


def test_an_override_reaches_another_instance_within_the_cache_ttl(api):
    clock = FakeClock()
    other = OverridingCatalog(FilePromptCatalog(), api.context.metadata, clock=clock, ttl_seconds=30)
    assert other.effective("planner").source == "file"
    assert api.call("PUT", "/api/v1/prompts/planner", user=ADMIN, json=planner_override()).status_code == 200
    clock.advance(29)
    assert other.effective("planner").source == "file"  # still its cached read
    clock.advance(1)
    assert other.get("planner").version == 2 and MARKER in other.get("planner").system
    api.call("DELETE", "/api/v1/prompts/planner", user=ADMIN)
    clock.advance(30)
    assert other.effective("planner").source == "file"


def test_two_admins_saving_at_once_get_two_versions(api):
    first = OverridingCatalog(FilePromptCatalog(), api.context.metadata, clock=FakeClock(), ttl_seconds=0)
    racing = OverridingCatalog(FilePromptCatalog(), RacingMetadata(api.context.metadata, first), clock=FakeClock(),
                               ttl_seconds=0)
    assert racing.save("planner", planner_override(), author="second").version == 3  # lost once, then built on 2
    assert [(v["version"], v["saved_by"]) for v in first.history("planner")] == [(2, "first"), (3, "second")]


class RacingMetadata:
    """A test double: the real store, but another admin's save lands just before this instance's first write."""

    def __init__(self, real, rival: OverridingCatalog):
        self.real, self.rival = real, rival

    def put(self, *args, **kwargs):
        rival, self.rival = self.rival, None
        if rival is not None:
            rival.save("planner", planner_override(), author="first")
        return self.real.put(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_a_stored_override_the_shipped_prompt_no_longer_accepts_is_ignored(api):
    stale = {**planner_override(), "output": {"format": "markdown"}}
    api.context.metadata.put(COLLECTION, GLOBAL_TENANT, "planner",
                             {"version": 2, "active": True, "history": [
                                 {"version": 2, "template": stale, "saved_by": ADMIN, "saved_at": "2026-01-01"}]})
    catalog = OverridingCatalog(FilePromptCatalog(), api.context.metadata, clock=FakeClock(), ttl_seconds=0)
    assert catalog.effective("planner").source == "file" and MARKER not in catalog.get("planner").system


def test_configuration_round_trips_with_the_layer_of_each_value(api):
    domain = api.call("PUT", "/api/v1/prompts/config/domain/My Sales",
                      json={"instructions": "Amounts are in rupiah.", "parameters": {"language": "id",
                                                                                     "currency": "IDR"}})
    assert domain.status_code == 200, domain.get_json()
    assert domain.get_json()["domain"] == "my-sales"
    user = api.call("PUT", "/api/v1/prompts/config/user", json={"parameters": {"language": "en", "tone": "formal"}})
    assert user.get_json()["config"] == {"instructions": "", "parameters": {"language": "en", "tone": "formal"}}

    body = api.call("GET", "/api/v1/prompts/config/domain/my-sales").get_json()
    assert body["layer"] == "domain" and body["config"]["parameters"] == {"language": "id", "currency": "IDR"}
    sources = {key: value["source"] for key, value in body["effective"]["parameters"].items()}
    assert (sources["language"], sources["currency"], sources["tone"], sources["week_start"]) == (
        "user", "domain", "user", "system")
    assert body["effective"]["instructions"] == [{"source": "domain", "text": "Amounts are in rupiah."}]
    alone = api.call("GET", "/api/v1/prompts/config/user").get_json()
    assert alone["layer"] == "user" and "currency" not in alone["effective"]["parameters"]
    prompt = api.call("GET", "/api/v1/prompts/planner?domain=my sales").get_json()
    assert prompt["configuration"] == body["effective"]


def test_the_config_routes_are_not_a_prompt_named_config(api):
    assert api.call("GET", "/api/v1/prompts/config/user").get_json()["layer"] == "user"
    assert api.call("PUT", "/api/v1/prompts/config/user", json={"instructions": "Be brief."}).status_code == 200
    assert overrides_stored(api) == []
    assert_error(api.call("GET", "/api/v1/prompts/config"), 404)
    assert_error(api.call("DELETE", "/api/v1/prompts/config/user", user=ADMIN), 405)


def test_each_tenant_sees_only_its_own_configuration(api):
    api.call("PUT", "/api/v1/prompts/config/user", json={"instructions": "Alice's rule."})
    api.call("PUT", "/api/v1/prompts/config/domain/sales", json={"parameters": {"currency": "EUR"}})
    mine = api.call("GET", "/api/v1/prompts/config/domain/sales").get_json()
    assert mine["effective"]["parameters"]["currency"]["value"] == "EUR"
    bobs = api.call("GET", "/api/v1/prompts/config/domain/sales", user="bob").get_json()
    assert bobs["config"] == {"instructions": "", "parameters": {}} and bobs["effective"]["instructions"] == []
    assert {value["source"] for value in bobs["effective"]["parameters"].values()} == {"system"}
    assert api.call("GET", "/api/v1/prompts/config/user", user="bob").get_json()["config"]["instructions"] == ""


@pytest.mark.parametrize("path,body,status", [
    ("/api/v1/prompts/config/user", {"parameters": {"flavour": "mint"}}, 400),
    ("/api/v1/prompts/config/user", {"parameters": {"max_answer_words": "many"}}, 400),
    ("/api/v1/prompts/config/user", {"instructions": 42}, 400),
    ("/api/v1/prompts/config/user", {"instructions": "x" * 4001}, 400),
    ("/api/v1/prompts/config/user", {"extra": True}, 400),
    ("/api/v1/prompts/config/user", ["instructions"], 400),
    ("/api/v1/prompts/config/user?domain=..", {"instructions": "Fine."}, 400),
    ("/api/v1/prompts/config/domain/..", {"instructions": "Fine."}, 400),
    ("/api/v1/prompts/config/domain/sales", {"parameters": {"tone": "sarcastic"}}, 400),
    ("/api/v1/prompts/config/domain/sales", None, 400),
])
def test_a_bad_configuration_is_refused_and_the_stored_one_stays(api, path, body, status):
    api.call("PUT", "/api/v1/prompts/config/user", json={"instructions": "Keep me."})
    api.call("PUT", "/api/v1/prompts/config/domain/sales", json={"instructions": "Keep me too."})
    kwargs = {"json": body} if body is not None else {}
    assert_error(api.call("PUT", path, **kwargs), status)
    assert api.call("GET", "/api/v1/prompts/config/user").get_json()["config"]["instructions"] == "Keep me."
    domain = api.call("GET", "/api/v1/prompts/config/domain/sales").get_json()
    assert domain["config"] == {"instructions": "Keep me too.", "parameters": {}}


def test_every_route_needs_an_identity(api):
    for method, path in [("GET", "/api/v1/prompts"), ("GET", "/api/v1/prompts/planner"),
                         ("PUT", "/api/v1/prompts/planner"), ("DELETE", "/api/v1/prompts/planner"),
                         ("GET", "/api/v1/prompts/config/user"), ("PUT", "/api/v1/prompts/config/domain/sales")]:
        response = api.client.open(path, method=method, json={})
        assert_error(response, 401, "UNAUTHENTICATED")
    assert overrides_stored(api) == []
