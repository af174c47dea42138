"""The Postgres API's guard rails: bad input on every route is a 4xx in the one error shape and changes
nothing; another tenant's connection is a 404 on every route; the host policy refuses the service's own
network outside local development."""

from __future__ import annotations

import io

import pytest

from tests.integration import test_postgres_api as shared
from tests.integration.test_postgres_api import (
    AWKWARD_TABLE,
    assert_error_shape,
    connection_body,
    state,
    table_path,
    use_settings,
)

# The shared fixtures, made visible to pytest in this module.
key_a, main, pg_ctx, pg_schema, pg_url = shared.key_a, shared.main, shared.pg_ctx, shared.pg_schema, shared.pg_url

TOO_BIG = {"name": "big", "padding": "x" * (1024 * 1024 + 10)}

BAD_SAVES = [
    {"drop": "name"}, {"name": "a:b"}, {"name": "x" * 64}, {"name": " main"}, {"name": "connections"},
    {"port": "54x"}, {"port": 70000}, {"port": True}, {"sslmode": "prefer"}, {"host": "db example"},
    {"host": "db/x"}, {"host": "me@db"}, {"password": 123}, {"password": "a\x00b"}, {"dbname": "d" * 64},
    {"user": ["postgres"]}, {"schema": "s\x01"}, {"surprise": 1},
]


@pytest.mark.parametrize("change", BAD_SAVES)
def test_saving_bad_connection_fields_changes_nothing(alice, main, pg_url, pg_schema, change):
    before = state(alice)
    body = {**connection_body(pg_url, pg_schema), **change}
    body.pop(body.pop("drop", ""), None)
    assert_error_shape(alice.request("POST", "/api/v1/postgres/connections", json=body), 400)
    assert state(alice) == before


@pytest.mark.parametrize("kwargs,status", [
    ({"data": b"{not json", "content_type": "application/json"}, 400),
    ({"json": ["a", "list"]}, 400),
    ({"data": b"", "content_type": "application/json"}, 400),
    ({"json": TOO_BIG}, 413),
])
def test_saving_a_malformed_body_changes_nothing(alice, main, kwargs, status):
    before = state(alice)
    assert_error_shape(alice.request("POST", "/api/v1/postgres/connections", **kwargs), status)
    assert state(alice) == before


BAD_NAME = "a%3Ab"  # "a:b": never a valid connection name
BAD_REQUESTS = [
    ("GET", f"/api/v1/postgres/connections/{BAD_NAME}", {}, 400),
    ("DELETE", f"/api/v1/postgres/connections/{BAD_NAME}", {}, 400),
    ("POST", f"/api/v1/postgres/connections/{BAD_NAME}/test", {}, 400),
    ("GET", f"/api/v1/postgres/{BAD_NAME}/tables", {}, 400),
    ("GET", "TABLE?limit=0", {}, 400),
    ("GET", "TABLE?limit=abc", {}, 400),
    ("GET", "TABLE?offset=-1", {}, 400),
    ("GET", "TABLE?limit=10001", {}, 400),
    ("GET", "/api/v1/postgres/main/tables/" + "t" * 64, {}, 400),
    ("POST", "/api/v1/postgres/main/tables", {"json": {"rows": [{"a": 1}]}}, 400),
    ("POST", "/api/v1/postgres/main/tables", {"json": {"table": "t" * 64, "rows": [{"a": 1}]}}, 400),
    ("POST", "/api/v1/postgres/main/tables", {"json": {"table": "new", "rows": []}}, 400),
    ("POST", "/api/v1/postgres/main/tables", {"json": {"table": "new", "rows": {"a": 1}}}, 400),
    ("POST", "/api/v1/postgres/main/tables", {"json": {"table": "new", "rows": [{"a\x00": 1}]}}, 400),
    ("POST", "/api/v1/postgres/main/tables", {"json": {"table": "new", "rows": [{"a": 1}], "x": 1}}, 400),
    ("POST", "/api/v1/postgres/main/tables", {"json": {"table": AWKWARD_TABLE, "rows": [{"a": 1}]}}, 409),
    ("POST", "/api/v1/postgres/main/tables", {"json": TOO_BIG}, 413),
    ("POST", "/api/v1/postgres/main/tables", {"content_type": "multipart/form-data", "data": {"table": "new"}}, 400),
    ("POST", "/api/v1/postgres/main/tables", {"content_type": "multipart/form-data", "data": {
        "table": "new", "file": (b"%PDF-1.4 not really", "notes.pdf")}}, 400),
    ("PUT", "TABLE", {"json": {"rows": [{"select": 1}]}}, 400),
    ("PUT", "TABLE", {"json": {"mode": "upsert", "rows": [{"select": 1}]}}, 400),
    ("PUT", "TABLE", {"json": {"mode": "append", "rows": []}}, 400),
    ("PUT", "TABLE", {"json": {"mode": "append", "rows": [{"no such column": 1}]}}, 400),
    ("PUT", "TABLE", {"json": {"mode": "replace", "rows": [{"select": 1}], "table": "x"}}, 400),
    ("PUT", "/api/v1/postgres/main/tables/missing", {"json": {"mode": "append", "rows": [{"a": 1}]}}, 404),
    ("DELETE", "/api/v1/postgres/main/tables/" + "t" * 64, {}, 400),
    ("DELETE", "/api/v1/postgres/main/tables/missing", {}, 404),
    ("POST", "/api/v1/postgres/main/query", {"json": {}}, 400),
    ("POST", "/api/v1/postgres/main/query", {"json": {"sql": 5}}, 400),
    ("POST", "/api/v1/postgres/main/query", {"json": {"sql": "select 1", "limit": 0}}, 400),
    ("POST", "/api/v1/postgres/main/query", {"json": {"sql": "select 1", "limit": "5"}}, 400),
    ("POST", "/api/v1/postgres/main/query", {"json": {"sql": "select 1", "rows": 5}}, 400),
    ("POST", "/api/v1/postgres/main/query", {"json": {"sql": "select 1; select 2"}}, 400),
    ("POST", "/api/v1/postgres/main/query", {"json": {"sql": f'delete from "{AWKWARD_TABLE}"'}}, 400),
    ("POST", "/api/v1/postgres/main/query", {"json": {"sql": "drop schema public cascade"}}, 400),
]


@pytest.mark.parametrize("method,path,kwargs,status", BAD_REQUESTS)
def test_bad_input_on_every_route_changes_nothing(alice, main, method, path, kwargs, status):
    before = state(alice)
    path = path.replace("TABLE", table_path())
    if "data" in kwargs:  # a fresh stream per run: the same case runs once per backend
        kwargs = {**kwargs, "data": {key: (io.BytesIO(value[0]), value[1]) if isinstance(value, tuple) else value
                                     for key, value in kwargs["data"].items()}}
    assert_error_shape(alice.request(method, path, **kwargs), status)
    assert state(alice) == before


ALICES = [
    ("GET", "/api/v1/postgres/connections/main", {}),
    ("DELETE", "/api/v1/postgres/connections/main", {}),
    ("POST", "/api/v1/postgres/connections/main/test", {}),
    ("GET", "/api/v1/postgres/main/tables", {}),
    ("GET", "TABLE", {}),
    ("POST", "/api/v1/postgres/main/tables", {"json": {"table": "mine now", "rows": [{"a": 1}]}}),
    ("PUT", "TABLE", {"json": {"mode": "replace", "rows": [{"select": 666}]}}),
    ("DELETE", "TABLE", {}),
    ("POST", "/api/v1/postgres/main/query", {"json": {"sql": f'select * from "{AWKWARD_TABLE}"'}}),
]


@pytest.mark.parametrize("method,path,kwargs", ALICES)
def test_another_tenants_connection_is_a_404_on_every_route(alice, bob, main, method, path, kwargs):
    before = state(alice)
    error = assert_error_shape(bob.request(method, path.replace("TABLE", table_path()), **kwargs), 404)
    assert error["code"] == "CONNECTION_NOT_FOUND"
    assert bob.get("/api/v1/postgres/connections").get_json() == {"items": []}
    assert state(alice) == before


def test_a_connection_of_the_same_name_is_each_tenants_own(alice, bob, main, pg_url, pg_schema):
    before = state(alice)
    body = connection_body(pg_url, pg_schema, dbname="postgres")
    assert bob.request("POST", "/api/v1/postgres/connections", json=body).status_code == 201
    assert bob.get("/api/v1/postgres/connections/main").get_json()["dbname"] == "postgres"
    assert state(alice) == before


def test_outside_local_the_service_cannot_reach_its_own_network(alice, ctx, main, pg_ctx, pg_url, pg_schema):
    before = state(alice)
    use_settings(ctx, environment="dev", encryption_keys=pg_ctx.settings.encryption_keys)
    refused = alice.request("POST", "/api/v1/postgres/connections",
                            json=connection_body(pg_url, pg_schema, name="other"))
    assert assert_error_shape(refused, 403)["code"] == "HOST_NOT_ALLOWED"
    # A connection saved while the host was allowed is checked again at every connect.
    for method, path in (("POST", "/api/v1/postgres/connections/main/test"), ("GET", "/api/v1/postgres/main/tables")):
        assert assert_error_shape(alice.request(method, path), 403)["code"] == "HOST_NOT_ALLOWED"
    use_settings(ctx, environment="dev", pg_allowed_hosts="public, 127.0.0.0/8",
                 encryption_keys=pg_ctx.settings.encryption_keys)
    assert alice.request("POST", "/api/v1/postgres/connections/main/test").status_code == 200
    assert state(alice) == before
