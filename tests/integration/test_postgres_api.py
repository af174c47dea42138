"""The v1 Postgres API against the real server: connections, tables with awkward names, read-only SQL.

Each test gets a fresh schema in the test database (its name has a space, a quote and a non-ASCII letter)
and drops it at teardown, so tests never see each other's tables. The fixtures here are shared by the
other test_postgres_* integration modules.
"""

from __future__ import annotations

import io
import json

import pytest

from common import bootstrap
from common.crypto import Encryptor, generate_key
from common.services.postgres import connections, engines
from tests.conftest import require_service
from tests.integration.conftest import assert_error

PASSWORD = "p@ss:w/rd?#%&=ü"  # trust auth ignores it; every character a URL needs escaped is in it
AWKWARD_TABLE = 'Sales "2024" order ü'
AWKWARD_ROWS = [{"Région": "Nord", "select": 1, 'say "hi"': 1.5, "order": True, "50% off": "a"},
                {"Région": "Süd", "select": 2, 'say "hi"': None, "order": False, "50% off": None}]


@pytest.fixture
def pg_url():
    from sqlalchemy.engine import make_url

    return make_url(require_service("TEST_POSTGRES_URL", "PostgreSQL"))


@pytest.fixture
def pg_schema(pg_url, unique_prefix):
    """A fresh schema for one test, dropped (with everything in it) at teardown."""
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    schema = f'it {unique_prefix} "ü"'
    admin = sa.create_engine(pg_url, poolclass=NullPool)
    with admin.begin() as connection:
        connection.execute(sa.schema.CreateSchema(schema))
    yield schema
    engines.ENGINES.clear()  # no pooled connection outlives its test
    with admin.begin() as connection:
        connection.execute(sa.schema.DropSchema(schema, cascade=True))
    admin.dispose()


def use_settings(ctx, **overrides):
    """Install a context like ``ctx`` (same stores) with some settings changed; return it."""
    context = bootstrap.build(ctx.settings.replace(**overrides), clock=ctx.clock, blobs=ctx.blobs,
                              metadata=ctx.metadata)
    bootstrap.use(context)
    return context


@pytest.fixture
def key_a() -> str:
    return generate_key()


@pytest.fixture
def pg_ctx(ctx, pg_schema, key_a):
    """The integration context, with an encryption key (A) and short Postgres timeouts."""
    return use_settings(ctx, encryption_keys=key_a, pg_statement_timeout_seconds=2.0)


def connection_body(pg_url, schema: str, **overrides) -> dict:
    return {"name": "main", "host": pg_url.host, "port": pg_url.port or 5432, "dbname": pg_url.database,
            "user": pg_url.username, "password": PASSWORD, "sslmode": "disable", "schema": schema, **overrides}


@pytest.fixture
def main(alice, pg_ctx, pg_url, pg_schema):
    """Alice's connection 'main' to the test schema, holding the awkward table."""
    saved = alice.request("POST", "/api/v1/postgres/connections", json=connection_body(pg_url, pg_schema))
    assert saved.status_code == 201, saved.get_json()
    created = alice.request("POST", "/api/v1/postgres/main/tables", json={"table": AWKWARD_TABLE,
                                                                           "rows": AWKWARD_ROWS})
    assert created.status_code == 201, created.get_json()
    return "/api/v1/postgres/main"


def table_path(table: str = AWKWARD_TABLE) -> str:
    from urllib.parse import quote

    return f"/api/v1/postgres/main/tables/{quote(table, safe='')}"


def state(api) -> tuple:
    """Everything a request could have changed: the connections, the tables, the awkward table's rows."""
    listing = api.get("/api/v1/postgres/connections").get_json()
    tables = api.get("/api/v1/postgres/main/tables").get_json()
    rows = api.get(table_path() + "?limit=1000").get_json()
    return listing, tables, rows


def assert_error_shape(response, status: int) -> dict:
    error = assert_error(response, status)
    assert error["message"]
    return error


def test_connection_round_trip_never_shows_the_password(alice, pg_ctx, pg_url, pg_schema):
    body = connection_body(pg_url, pg_schema, name="Sales DB ü", port=str(pg_url.port or 5432))
    responses = [alice.request("POST", "/api/v1/postgres/connections", json=body)]
    assert responses[0].status_code == 201, responses[0].get_json()
    assert responses[0].get_json()["port"] == (pg_url.port or 5432) and responses[0].get_json()["has_password"]
    path = "/api/v1/postgres/connections/Sales%20DB%20%C3%BC"
    responses += [alice.get("/api/v1/postgres/connections"), alice.get(path),
                  alice.request("POST", path + "/test")]
    assert [item["name"] for item in responses[1].get_json()["items"]] == ["Sales DB ü"]
    assert responses[3].get_json()["ok"] is True and responses[3].get_json()["server_version"]
    resaved = alice.request("POST", "/api/v1/postgres/connections", json={**body, "sslmode": "disable"})
    assert resaved.status_code == 200
    stored = pg_ctx.metadata.get(connections.COLLECTION, "alice", "Sales DB ü").data
    for response in responses + [resaved]:
        text = response.get_data(as_text=True)
        assert PASSWORD not in text and stored["password_enc"] not in text and "password_enc" not in text
    assert PASSWORD not in json.dumps(stored, ensure_ascii=False)
    assert pg_ctx.settings.encryption_keys and Encryptor(pg_ctx.settings.encryption_keys).decrypt(
        stored["password_enc"]) == PASSWORD
    assert alice.delete(path).get_json() == {"deleted": True, "name": "Sales DB ü"}
    assert_error_shape(alice.get(path), 404)
    assert alice.get("/api/v1/postgres/connections").get_json() == {"items": []}


def test_a_changed_connection_gets_a_new_engine(alice, pg_ctx, pg_url, pg_schema):
    alice.request("POST", "/api/v1/postgres/connections", json=connection_body(pg_url, pg_schema))
    assert alice.request("POST", "/api/v1/postgres/connections/main/test").status_code == 200
    changed = connection_body(pg_url, pg_schema, dbname="no_such_database_here")
    assert alice.request("POST", "/api/v1/postgres/connections", json=changed).status_code == 200
    error = assert_error_shape(alice.request("POST", "/api/v1/postgres/connections/main/test"), 502)
    assert error["code"] == "PG_CONNECT_FAILED" and PASSWORD not in error["message"]


def test_sslmode_require_is_refused_by_a_server_without_tls(alice, pg_ctx, pg_url, pg_schema):
    alice.request("POST", "/api/v1/postgres/connections", json=connection_body(pg_url, pg_schema, sslmode="require"))
    error = assert_error_shape(alice.request("POST", "/api/v1/postgres/connections/main/test"), 502)
    assert "SSL" in error["message"]


def test_v1_keeps_require_as_its_default_where_the_original_routes_use_prefer(alice, pg_ctx, pg_url, pg_schema):
    body = {key: value for key, value in connection_body(pg_url, pg_schema).items() if key != "sslmode"}
    saved = alice.request("POST", "/api/v1/postgres/connections", json=body)
    assert saved.status_code == 201 and saved.get_json()["sslmode"] == "require"
    error = assert_error_shape(alice.request("POST", "/api/v1/postgres/connections/main/test"), 502)
    assert "SSL" in error["message"]  # the server has no TLS, and require does not fall back to plain text
    legacy = {key: value for key, value in body.items() if key not in ("name", "schema")}
    assert alice.request("POST", "/pg/test", json=legacy).get_json() == {"ok": True}


def test_key_rotation_keeps_connections_working_and_resave_uses_the_new_key(alice, ctx, pg_ctx, pg_url, pg_schema,
                                                                              key_a):
    alice.request("POST", "/api/v1/postgres/connections", json=connection_body(pg_url, pg_schema))
    key_b = generate_key()
    use_settings(ctx, encryption_keys=f"{key_b},{key_a}")
    assert alice.request("POST", "/api/v1/postgres/connections/main/test").get_json()["ok"] is True
    without_password = {k: v for k, v in connection_body(pg_url, pg_schema).items() if k != "password"}
    assert alice.request("POST", "/api/v1/postgres/connections", json=without_password).status_code == 200
    stored = ctx.metadata.get(connections.COLLECTION, "alice", "main").data["password_enc"]
    assert Encryptor(key_b).decrypt(stored) == PASSWORD  # re-encrypted under B alone
    use_settings(ctx, encryption_keys=key_b)  # A retired
    assert alice.request("POST", "/api/v1/postgres/connections/main/test").get_json()["ok"] is True


def test_awkward_names_round_trip(alice, main):
    listing = alice.get(f"{main}/tables").get_json()
    assert [(item["name"], item["kind"]) for item in listing["items"]] == [(AWKWARD_TABLE, "table")]
    page = alice.get(table_path()).get_json()
    assert [column["name"] for column in page["columns"]] == ["Région", "select", 'say "hi"', "order", "50% off"]
    assert [column["type"] for column in page["columns"]] == ["TEXT", "BIGINT", "DOUBLE PRECISION", "BOOLEAN",
                                                              "TEXT"]
    assert page["rows"] == AWKWARD_ROWS and page["has_more"] is False
    appended = alice.request("PUT", table_path(), json={"mode": "append", "rows": [{"Région": "Ost", "select": 3}]})
    assert appended.get_json()["rows_written"] == 1
    page = alice.get(table_path() + "?limit=2&offset=1").get_json()
    assert len(page["rows"]) == 2 and page["has_more"] is False
    answer = alice.request("POST", f"{main}/query", json={
        "sql": f'select "Région", "select" from "{AWKWARD_TABLE.replace(chr(34), chr(34) * 2)}" '
               f'where "order" is not true and coalesce("50% off", \'%\') like \'%\' order by "select"'})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["rows"] == [{"Région": "Süd", "select": 2}, {"Région": "Ost", "select": 3}]
    replaced = alice.request("PUT", table_path(), json={"mode": "replace", "rows": [{"select": 9}]})
    assert replaced.status_code == 200
    assert alice.get(table_path()).get_json()["rows"] == [{"Région": None, "select": 9, 'say "hi"': None,
                                                           "order": None, "50% off": None}]
    assert alice.delete(table_path()).get_json()["deleted"] is True
    assert alice.get(f"{main}/tables").get_json()["items"] == []
    assert_error_shape(alice.get(table_path()), 404)


def test_create_from_an_uploaded_file_infers_types(alice, main):
    csv = b"day;amount;label\n2024-01-02;12.5;a\n2024-01-03;7;b\n"
    response = alice.request("POST", f"{main}/tables", content_type="multipart/form-data",
                             data={"table": "from file", "file": (io.BytesIO(csv), "sales.csv")})
    assert response.status_code == 201, response.get_json()
    types = {column["name"]: column["type"] for column in response.get_json()["columns"]}
    assert types == {"day": "DATE", "amount": "DOUBLE PRECISION", "label": "TEXT"}
    assert alice.get(table_path("from file")).get_json()["rows"][0] == {"day": "2024-01-02", "amount": 12.5,
                                                                          "label": "a"}


@pytest.mark.parametrize("mode", ["append", "replace"])
def test_a_write_failing_halfway_leaves_the_table_as_it_was(alice, main, mode):
    before = alice.get(table_path()).get_json()["rows"]
    # Three batches of 1000; the bad value sits in the third, after two batches went in.
    rows = [{"select": str(n)} for n in range(2500)]
    rows[2200] = {"select": "not a number"}
    response = alice.request("PUT", table_path(), json={"mode": mode, "rows": rows})
    assert assert_error_shape(response, 400)["code"] == "PG_REJECTED"
    assert alice.get(table_path() + "?limit=5000").get_json()["rows"] == before


def test_query_is_checked_read_only_capped_and_timed(alice, main):
    capped = alice.request("POST", f"{main}/query", json={"sql": "select * from generate_series(1, 50) g",
                                                           "limit": 10}).get_json()
    assert capped["row_count"] == 10 and capped["truncated"] is True
    for sql in ("delete from \"x\"", "select pg_sleep(5)", "select * from pg_catalog.pg_class"):
        error = assert_error_shape(alice.request("POST", f"{main}/query", json={"sql": sql}), 400)
        assert error["code"] == "SQL_REJECTED"
    slow = alice.request("POST", f"{main}/query",
                         json={"sql": "select count(*) from generate_series(1, 1000000000) g"})
    assert assert_error_shape(slow, 400)["code"] == "SQL_TIMEOUT"


def test_the_read_only_transaction_refuses_writes_that_pass_a_check(alice, main, pg_ctx):
    from common.analysis.sql_policy import SqlRejected
    from common.auth import Tenant

    record, engine = connections.engine_for(pg_ctx, Tenant("alice"), "main")
    with pytest.raises(SqlRejected), engines.transaction(engine, pg_ctx.settings, read_only=True,
                                                         schema=record.data["schema"]) as connection:
        connection.exec_driver_sql("create table sneaky (a int)")
    assert [item["name"] for item in alice.get(f"{main}/tables").get_json()["items"]] == [AWKWARD_TABLE]
