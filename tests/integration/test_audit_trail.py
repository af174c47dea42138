"""The audit trail through the functions: every sensitive operation (v1 and the original API's routes) appends
its records, never with a secret or a cell of data; the listing is per tenant, filtered and paged; refusals are
log lines only; and an operation whose record cannot be written answers 503 and changes nothing."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import Counter

import pytest

from common import bootstrap
from common.audit import COLLECTION, FIRST_USED_FIELD, REFUSALS
from common.auth import Tenant
from common.clock import FakeClock
from common.errors import ServiceUnavailable
from common.prompts import load_prompts
from common.services import sessions
from common.services.llm_config import stored_keys
from tests.integration.conftest import Api, assert_error, use_settings
from tests.model_server import ModelServer, Reply

KEY = "AIzaSyD-audit-secret-0123456789wxyz"
OTHER_KEY = "AIzaSyD-audit-second-0123456789QRST"
CELL = "Confidential-Cell-7731"
ADMIN = "root"


@pytest.fixture(scope="module")
def providers():
    """Model lists on loopback that accept KEY and OTHER_KEY (a key check lists its models)."""
    with ModelServer(lambda agent, messages: Reply("unused"), accepted_keys={KEY, OTHER_KEY}) as server:
        yield server


@pytest.fixture
def checked(keyed, providers):
    return use_settings(keyed, llm_key_check_urls=f"gemini={providers.url}", admin_users=(ADMIN,))


@pytest.fixture
def audit_lines(caplog):
    """The audit log lines written during the test, as the fields a log sink receives."""
    caplog.set_level(logging.INFO, logger="convoinsight.audit")

    def lines() -> list[dict]:
        return [record.fields["audit_event"] for record in caplog.records if record.name == "convoinsight.audit"]

    return lines


def trail(context, user: str = "alice") -> list[dict]:
    return [record.data for record in context.metadata.list(COLLECTION, user)]


def actions(context, user: str = "alice") -> Counter:
    return Counter((event["action"], event["outcome"], event["status"]) for event in trail(context, user))


def assert_no_secret(context, lines, *secrets: str) -> None:
    stored = json.dumps([record.data for record in context.metadata.scan(COLLECTION)], ensure_ascii=False)
    logged = json.dumps(lines(), ensure_ascii=False)
    for secret in secrets:
        assert secret not in stored and secret not in logged


def test_saving_checking_and_deleting_a_key_is_recorded_without_the_key(alice, checked, audit_lines):
    saved = alice.request("POST", "/api/v1/llm/keys?verify=true", json={"provider": "gemini", "api_key": KEY},
                          headers={"X-Forwarded-For": "198.51.100.4"}, environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert saved.status_code == 201, saved.get_json()
    assert alice.request("PUT", "/api/v1/llm/keys/gemini", json={"api_key": OTHER_KEY}).status_code == 200
    assert alice.delete("/api/v1/llm/keys/gemini").status_code == 200
    assert alice.delete("/api/v1/llm/keys/gemini").status_code == 404
    assert actions(checked) == Counter({
        ("llm_key.test", "attempted", 0): 1, ("llm_key.test", "success", 200): 1,
        ("llm_key.save", "attempted", 0): 2, ("llm_key.save", "success", 201): 1, ("llm_key.save", "success", 200): 1,
        ("llm_key.delete", "attempted", 0): 2, ("llm_key.delete", "success", 200): 1,
        ("llm_key.delete", "failure", 404): 1})
    first = next(event for event in trail(checked) if event["action"] == "llm_key.test")
    assert first["tenant_id"] == first["actor"] == "alice" and first["resource"] == "llm_key/gemini"
    assert first["request_id"] == saved.headers["X-Request-Id"] and first["client"] == "198.51.100.4, 10.0.0.9"
    assert len(audit_lines()) == len(trail(checked)) and all(line["tenant_id"] == "alice" for line in audit_lines())
    assert_no_secret(checked, audit_lines, KEY, OTHER_KEY, KEY[-4:] + '"')


def test_the_original_key_routes_are_recorded_too(client, checked, audit_lines):
    body = {"userId": "alice", "provider": "gemini", "apiKey": KEY}
    assert client.post("/validate-key", json=body).get_json()["valid"] is True
    assert client.put("/update-provider-key", json={**body, "apiKey": OTHER_KEY}).get_json()["updated"] is True
    assert client.delete("/delete-provider-key", json={"userId": "alice", "provider": "gemini"}).status_code == 200
    assert actions(checked) == Counter({
        ("llm_key.test", "attempted", 0): 2, ("llm_key.test", "success", 200): 2,
        ("llm_key.save", "attempted", 0): 2, ("llm_key.save", "success", 200): 2,
        ("llm_key.delete", "attempted", 0): 1, ("llm_key.delete", "success", 200): 1})
    assert_no_secret(checked, audit_lines, KEY, OTHER_KEY)


def test_a_keys_first_use_ever_is_recorded_once_and_a_new_key_starts_again(alice, checked, audit_lines):
    alice.request("POST", "/api/v1/llm/keys", json={"provider": "gemini", "api_key": KEY})
    for _ in range(3):
        assert stored_keys.key_for_use(checked, Tenant("alice"), "gemini").api_key == KEY
    assert actions(checked)[("llm_key.first_use", "success", 200)] == 1
    assert checked.metadata.get(stored_keys.COLLECTION, "alice", "gemini").data[FIRST_USED_FIELD]
    alice.request("PUT", "/api/v1/llm/keys/gemini", json={"api_key": OTHER_KEY})
    assert stored_keys.key_for_use(checked, Tenant("alice"), "gemini").api_key == OTHER_KEY
    assert actions(checked)[("llm_key.first_use", "success", 200)] == 2
    assert_no_secret(checked, audit_lines, KEY, OTHER_KEY)


def test_dataset_domain_and_session_deletes_are_recorded_without_their_cells(alice, ctx, client, audit_lines):
    table = f"region,secret\nNorth,{CELL}\n".encode()
    for name in ("a.csv", "b.csv", "c.csv", "d.csv"):
        assert alice.upload("sales" if name < "c" else "ops", (name, table)).status_code == 201
    assert alice.delete("/api/v1/datasets/sales/a.csv").status_code == 200
    assert alice.delete("/api/v1/datasets/sales").status_code == 200
    assert alice.delete("/datasets/ops/c.csv").status_code == 200
    assert client.delete("/datasets/ops/all?userId=alice").status_code == 200
    sessions.record_turns(ctx.metadata, Tenant("alice"), session_id="s1", domain="sales", query_id="q1",
                          prompt=f"what is {CELL}?", answer={"answer_markdown": CELL}, now=ctx.clock.now())
    assert alice.delete("/api/v1/sessions/s1").status_code == 200
    assert actions(ctx) == Counter({
        ("dataset.delete", "attempted", 0): 2, ("dataset.delete", "success", 200): 2,
        ("domain.delete", "attempted", 0): 2, ("domain.delete", "success", 200): 2,
        ("session.delete", "attempted", 0): 1, ("session.delete", "success", 200): 1})
    domains = [event for event in trail(ctx) if event["action"] == "domain.delete" and event["outcome"] == "success"]
    assert sorted(event["details"]["deleted_count"] for event in domains) == [1, 1]
    assert_no_secret(ctx, audit_lines, CELL)


def test_prompt_overrides_reverts_and_configuration_are_recorded(client, checked, audit_lines):
    root, alice = Api(client, ADMIN), Api(client, "alice")
    body = load_prompts()["planner"].to_dict()
    body["system"] = body["system"].rstrip() + "\n\nAudit marker.\n"
    assert root.request("PUT", "/api/v1/prompts/planner", json=body).status_code == 200
    assert root.delete("/api/v1/prompts/planner").status_code == 200
    assert alice.request("PUT", "/api/v1/prompts/planner", json=body).status_code == 403
    assert alice.request("PUT", "/api/v1/prompts/config/user", json={"instructions": CELL}).status_code == 200
    assert alice.request("PUT", "/api/v1/prompts/config/domain/sales", json={"instructions": "x"}).status_code == 200
    assert actions(checked, ADMIN) == Counter({
        ("prompt.override", "attempted", 0): 1, ("prompt.override", "success", 200): 1,
        ("prompt.revert", "attempted", 0): 1, ("prompt.revert", "success", 200): 1})
    assert actions(checked) == Counter({("config.set", "attempted", 0): 2, ("config.set", "success", 200): 2})
    configs = [event["resource"] for event in trail(checked) if event["outcome"] == "success"]
    assert sorted(configs) == ["config/domain/sales", "config/user"]
    assert_no_secret(checked, audit_lines, CELL, "Audit marker")


def seed(client, user: str, count: int, clock: FakeClock) -> None:
    """``count`` key saves and deletes by ``user``, a minute apart."""
    api = Api(client, user)
    for _ in range(count):
        clock.advance(60)
        api.request("POST", "/api/v1/llm/keys", json={"provider": "gemini", "api_key": KEY})
        clock.advance(60)
        api.delete("/api/v1/llm/keys/gemini")


@pytest.fixture
def timed(checked):
    """The checked context on a fake clock, so records have known times."""
    clock = FakeClock(dt.datetime(2026, 5, 1, tzinfo=dt.UTC))
    context = bootstrap.build(checked.settings, clock=clock, blobs=checked.blobs, metadata=checked.metadata)
    bootstrap.use(context)
    return context, clock


def test_each_tenant_lists_only_its_own_trail_and_an_admin_any(client, timed):
    context, clock = timed
    seed(client, "alice", 2, clock)
    seed(client, "bob", 1, clock)
    alice, bob, root = Api(client, "alice"), Api(client, "bob"), Api(client, ADMIN)
    mine = alice.get("/api/v1/audit").get_json()
    assert mine["tenant"] == "alice" and mine["count"] == 8 and mine["next_cursor"] is None
    assert {item["tenant_id"] for item in mine["items"]} == {"alice"}
    assert [item["at"] for item in mine["items"]] == sorted((item["at"] for item in mine["items"]), reverse=True)
    assert bob.get("/api/v1/audit").get_json()["count"] == 4
    assert_error(bob.get("/api/v1/audit?tenant=alice"), 403, "NOT_ADMIN")
    assert bob.get("/api/v1/audit?tenant=bob").status_code == 200
    theirs = root.get("/api/v1/audit?tenant=alice").get_json()
    assert theirs["tenant"] == "alice" and theirs["count"] == 9  # its own read is on alice's record first
    read = theirs["items"][0]
    assert read["action"] == "audit.read" and read["actor"] == ADMIN and read["tenant_id"] == "alice"
    assert not [event for event in trail(context, ADMIN) if event["action"] == "audit.read"]


def test_the_listing_filters_by_action_and_time_and_pages_by_cursor(client, timed):
    context, clock = timed
    seed(client, "alice", 3, clock)  # saves at 00:01, 00:03, 00:05; deletes at 00:02, 00:04, 00:06
    alice = Api(client, "alice")
    deletes = alice.get("/api/v1/audit?action=llm_key.delete").get_json()["items"]
    assert [item["outcome"] for item in deletes] == ["success", "attempted"] * 3
    window = alice.get("/api/v1/audit?from=2026-05-01T00:03:00Z&to=2026-05-01T00:05:00").get_json()["items"]
    assert [(item["action"], item["at"][11:16]) for item in window][::2] == [
        ("llm_key.delete", "00:04"), ("llm_key.save", "00:03")]
    seen, cursor = [], ""
    while True:
        page = alice.get(f"/api/v1/audit?limit=5&cursor={cursor}").get_json()
        seen += [item["id"] for item in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    everything = [item["id"] for item in alice.get("/api/v1/audit?limit=200").get_json()["items"]]
    assert seen == everything and len(everything) == 12
    filtered = alice.get("/api/v1/audit?action=llm_key.save&limit=4").get_json()
    rest = alice.get(f"/api/v1/audit?action=llm_key.save&limit=4&cursor={filtered['next_cursor']}").get_json()
    assert len(filtered["items"]) == 4 and len(rest["items"]) == 2 and rest["next_cursor"] is None
    assert {item["action"] for item in filtered["items"] + rest["items"]} == {"llm_key.save"}


@pytest.mark.parametrize("query", ["action=auth.refused", "action=nope", "limit=0", "limit=201", "limit=x",
                                   "from=yesterday", "to=2026-13-01", "from=2026-05-02&to=2026-05-01",
                                   "cursor=!!!!"])
def test_bad_listing_parameters_are_400(alice, ctx, query):
    assert_error(alice.get(f"/api/v1/audit?{query}"), 400)


def test_no_route_edits_or_deletes_audit_records(alice, ctx):
    for method in ("PUT", "POST", "DELETE", "PATCH"):
        assert alice.request(method, "/api/v1/audit").status_code == 405


def test_refusals_are_logged_and_never_stored(client, checked, audit_lines):
    use_settings(checked, rate_limits="upload=1/minute", admin_users=(ADMIN,))
    assert client.get("/api/v1/llm/keys").status_code == 401  # no identity (DEV_USER unset)
    assert Api(client, "bob").get("/api/v1/audit?tenant=alice").status_code == 403
    alice = Api(client, "alice")
    assert alice.upload("sales", ("a.csv", b"x\n1\n")).status_code == 201
    assert alice.upload("sales", ("b.csv", b"x\n1\n")).status_code == 429
    refusals = [line for line in audit_lines() if line["action"] in REFUSALS]
    assert sorted((line["action"], line["status"]) for line in refusals) == [
        ("auth.refused", 401), ("authz.refused", 403), ("rate_limit.refused", 429)]
    assert all(line["outcome"] == "refused" and line["request_id"] for line in refusals)
    assert not [record for record in checked.metadata.scan(COLLECTION) if record.data["action"] in REFUSALS]
    assert not list(checked.metadata.scan(COLLECTION))  # an upload is not audited; the refusals are not stored


class AuditRefusingStore:
    """The real store, except that the audit collection cannot be written (its database is down)."""

    def __init__(self, inner) -> None:
        self._inner = inner

    def put(self, collection, *args, **kwargs):
        if collection == COLLECTION:
            raise ServiceUnavailable("the metadata database is unavailable")
        return self._inner.put(collection, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._inner, name)


def test_an_operation_that_cannot_be_recorded_answers_503_and_changes_nothing(alice, checked, audit_lines):
    assert alice.request("POST", "/api/v1/llm/keys", json={"provider": "gemini", "api_key": KEY}).status_code == 201
    assert alice.upload("sales", ("a.csv", b"x\n1\n")).status_code == 201
    before = [(record.key, record.data) for record in checked.metadata.list(stored_keys.COLLECTION, "alice")]
    refusing = bootstrap.build(checked.settings, clock=checked.clock, blobs=checked.blobs,
                               metadata=AuditRefusingStore(checked.metadata))
    bootstrap.use(refusing)
    assert_error(alice.delete("/api/v1/llm/keys/gemini"), 503, "AUDIT_UNAVAILABLE")
    assert_error(alice.request("PUT", "/api/v1/llm/keys/gemini", json={"api_key": OTHER_KEY}), 503)
    assert_error(alice.delete("/api/v1/datasets/sales/a.csv"), 503, "AUDIT_UNAVAILABLE")
    assert_error(alice.delete("/api/v1/datasets/sales"), 503)
    with pytest.raises(ServiceUnavailable):
        stored_keys.key_for_use(refusing, Tenant("alice"), "gemini")
    bootstrap.use(checked)
    after = [(record.key, record.data) for record in checked.metadata.list(stored_keys.COLLECTION, "alice")]
    assert after == before  # not deleted, not replaced, and its first use not flagged (the flag was put back)
    assert [item["name"] for item in alice.get("/api/v1/datasets").get_json()["items"]] == ["a.csv"]
    assert actions(checked)[("llm_key.delete", "attempted", 0)] == 0
    unstored = [line for line in audit_lines() if line["outcome"] == "attempted"]
    assert len(unstored) >= 4  # what could not be stored still reached the audit log stream
