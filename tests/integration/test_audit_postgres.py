"""The audit trail of saved Postgres connections against the real server: saving, testing, the first use ever
and deleting, through v1 and the original API's /pg routes, never with the password in a record or a line."""

from __future__ import annotations

import json
import logging
from collections import Counter

from common.audit import COLLECTION, FIRST_USED_FIELD
from common.services.postgres import connections
from tests.integration import test_postgres_api as shared
from tests.integration.test_postgres_api import PASSWORD, connection_body

# The shared fixtures, made visible to pytest in this module.
key_a, pg_ctx, pg_schema, pg_url = shared.key_a, shared.pg_ctx, shared.pg_schema, shared.pg_url


def actions(context, user: str = "alice") -> Counter:
    return Counter((record.data["action"], record.data["outcome"], record.data["status"])
                   for record in context.metadata.list(COLLECTION, user))


def test_a_connections_save_test_first_use_and_delete_are_recorded_without_its_password(alice, pg_ctx, pg_url,
                                                                                         pg_schema, caplog):
    caplog.set_level(logging.INFO, logger="convoinsight.audit")
    assert alice.request("POST", "/api/v1/postgres/connections",
                         json=connection_body(pg_url, pg_schema)).status_code == 201
    assert alice.request("POST", "/api/v1/postgres/connections/main/test").status_code == 200
    assert FIRST_USED_FIELD not in pg_ctx.metadata.get(connections.COLLECTION, "alice", "main").data  # a test is no use
    for _ in range(2):
        ran = alice.request("POST", "/api/v1/postgres/main/query", json={"sql": "SELECT 1 AS one"})
        assert ran.status_code == 200, ran.get_json()
    assert pg_ctx.metadata.get(connections.COLLECTION, "alice", "main").data[FIRST_USED_FIELD]
    assert alice.request("POST", "/api/v1/postgres/connections",
                         json=connection_body(pg_url, pg_schema)).status_code == 200
    assert alice.delete("/api/v1/postgres/connections/main").status_code == 200
    assert actions(pg_ctx) == Counter({
        ("postgres_connection.save", "attempted", 0): 2, ("postgres_connection.save", "success", 201): 1,
        ("postgres_connection.save", "success", 200): 1,
        ("postgres_connection.test", "attempted", 0): 1, ("postgres_connection.test", "success", 200): 1,
        ("postgres_connection.first_use", "success", 200): 1,
        ("postgres_connection.delete", "attempted", 0): 1, ("postgres_connection.delete", "success", 200): 1})
    stored = json.dumps([record.data for record in pg_ctx.metadata.scan(COLLECTION)], ensure_ascii=False)
    logged = json.dumps([record.fields for record in caplog.records if record.name == "convoinsight.audit"],
                        ensure_ascii=False)
    assert PASSWORD not in stored and PASSWORD not in logged and "password_enc" not in stored


def test_the_original_pg_routes_are_recorded_too(alice, pg_ctx, pg_url):
    fields = {"host": pg_url.host, "port": str(pg_url.port or 5432), "dbname": pg_url.database,
              "user": pg_url.username, "password": PASSWORD}
    assert alice.request("POST", "/pg/test", json=fields).get_json()["ok"] is True
    assert alice.request("POST", "/pg/test", json={**fields, "port": "1"}).get_json()["ok"] is False
    assert alice.request("POST", "/pg/save", json={**fields, "userId": "alice"}).get_json()["saved"] is True
    counted = actions(pg_ctx)
    assert counted[("postgres_connection.test", "success", 200)] == 1
    assert sum(count for (action, outcome, _), count in counted.items()
               if action == "postgres_connection.test" and outcome == "failure") == 1
    assert counted[("postgres_connection.save", "success", 200)] == 1
    stored = json.dumps([record.data for record in pg_ctx.metadata.scan(COLLECTION)], ensure_ascii=False)
    assert PASSWORD not in stored
