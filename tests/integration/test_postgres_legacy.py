"""The original API's /pg/save, /pg/get and /pg/test: the frontend's calls, in its order, with the shapes it
reads (a flag and ``error`` whatever the status, string ports, string ``updated_at``)."""

from __future__ import annotations

import contextlib
import re
import select
import socket
import socketserver
import struct
import threading
from collections.abc import Iterator

import pytest

from tests.integration import test_postgres_api as shared
from tests.integration.test_postgres_api import PASSWORD, use_settings

# The shared fixtures, made visible to pytest in this module.
key_a, pg_ctx, pg_schema, pg_url = shared.key_a, shared.pg_ctx, shared.pg_schema, shared.pg_url


def frontend_fields(pg_url, **overrides) -> dict:
    # What ConnectPage.tsx sends: the port as typed into a text box, no name, no sslmode (the test server has
    # no TLS: libpq's default, prefer, connects to it in plain text as the original did).
    return {"host": pg_url.host, "port": str(pg_url.port or 5432), "dbname": pg_url.database,
            "user": pg_url.username, "password": PASSWORD, **overrides}


def test_frontend_flow_get_test_save_get(alice, pg_ctx, pg_url):
    empty = alice.get("/pg/get?userId=alice")
    assert empty.status_code == 200 and empty.get_json() == {"items": [], "count": 0}
    assert empty.headers["Deprecation"] == "true" and "/api/v1/postgres/connections" in empty.headers["Link"]

    tested = alice.request("POST", "/pg/test", json=frontend_fields(pg_url))
    assert tested.status_code == 200 and tested.get_json() == {"ok": True}

    saved = alice.request("POST", "/pg/save", json={**frontend_fields(pg_url), "userId": "alice"})
    assert saved.status_code == 200 and saved.get_json() == {"saved": True, "id": "alice_default"}

    listing = alice.get("/pg/get?userId=alice")
    assert listing.get_json()["count"] == 1
    item = listing.get_json()["items"][0]
    assert set(item) == {"id", "name", "host", "port", "dbname", "user", "updated_at"}
    assert (item["id"], item["name"], item["port"]) == ("alice_default", "default", str(pg_url.port or 5432))
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", item["updated_at"][:19])  # the frontend's slice
    for response in (tested, saved, listing):
        assert PASSWORD not in response.get_data(as_text=True)
    # The same connection through v1, where pg:* tokens find it.
    v1 = alice.get("/api/v1/postgres/connections/default").get_json()
    # Saved with the sslmode it was tested with, so the pg: tokens' reads connect as the test did.
    assert (v1["name"], v1["sslmode"], v1["has_password"]) == ("default", "prefer", True)
    assert alice.request("POST", "/api/v1/postgres/connections/default/test").get_json()["ok"] is True


def test_an_sslmode_the_body_names_is_used_and_a_server_without_tls_refuses_require(alice, pg_ctx, pg_url):
    response = alice.request("POST", "/pg/test", json=frontend_fields(pg_url, sslmode="require"))
    assert response.status_code == 502
    body = response.get_json()
    # The frontend shows "Connection failed: " + error: the error must not say it again.
    assert body["ok"] is False and "SSL" in body["error"] and not body["error"].lower().startswith("connection")
    assert alice.request("POST", "/pg/test", json=frontend_fields(pg_url, sslmode="disable")).get_json() == \
        {"ok": True}


def test_an_unreachable_database_is_ok_false_with_the_reason(alice, pg_ctx, pg_url):
    response = alice.request("POST", "/pg/test", json=frontend_fields(pg_url, port="1"))
    assert response.status_code == 502
    assert response.get_json()["ok"] is False
    assert response.get_json()["error"].startswith("cannot reach")


@pytest.mark.parametrize("fields,status", [
    ({"host": None}, 400), ({"port": ""}, 400), ({"port": "abc"}, 400), ({"port": "99999"}, 400),
    ({"host": "db host"}, 400), ({"host": "evil/path"}, 400), ({"user": None}, 400), ({"dbname": ""}, 400),
    ({"sslmode": "allow"}, 400),
])
def test_bad_test_fields_are_ok_false(alice, pg_ctx, pg_url, fields, status):
    body = {key: value for key, value in {**frontend_fields(pg_url), **fields}.items() if value is not None}
    response = alice.request("POST", "/pg/test", json=body)
    assert response.status_code == status
    assert response.get_json()["ok"] is False and response.get_json()["error"]
    assert not response.get_json()["error"].startswith("Connection failed")


@pytest.mark.parametrize("fields,status", [
    ({"userId": None}, 400), ({"userId": "mallory"}, 403), ({"userId": 7}, 400), ({"password": None}, 400),
    ({"host": None}, 400), ({"port": "5432x"}, 400), ({"port": 0}, 400), ({"host": "a b"}, 400),
    ({"name": "bad:name"}, 400), ({"name": "x" * 64}, 400), ({"sslmode": "verify-ca"}, 400),
])
def test_bad_save_fields_are_saved_false_and_save_nothing(alice, pg_ctx, pg_url, fields, status):
    body = {key: value for key, value in {**frontend_fields(pg_url), "userId": "alice", **fields}.items()
            if value is not None}
    response = alice.request("POST", "/pg/save", json=body)
    assert response.status_code == status
    assert response.get_json()["saved"] is False and response.get_json()["error"]
    assert alice.get("/pg/get?userId=alice").get_json() == {"items": [], "count": 0}


def test_save_refuses_a_host_outside_the_policy(alice, ctx, pg_ctx, pg_url):
    use_settings(ctx, environment="dev", encryption_keys=pg_ctx.settings.encryption_keys)
    response = alice.request("POST", "/pg/save", json={**frontend_fields(pg_url), "userId": "alice"})
    assert response.status_code == 403
    assert response.get_json()["saved"] is False and "PG_ALLOWED_HOSTS" in response.get_json()["error"]
    tested = alice.request("POST", "/pg/test", json=frontend_fields(pg_url))
    assert tested.status_code == 403 and tested.get_json()["error"].startswith("connections to ")
    assert alice.get("/pg/get?userId=alice").get_json()["count"] == 0


@pytest.mark.parametrize("query,status", [("", 400), ("?userId=", 400), ("?userId=mallory", 403)])
def test_get_needs_the_callers_own_user_id(alice, pg_ctx, query, status):
    response = alice.get(f"/pg/get{query}")
    assert response.status_code == status and set(response.get_json()) == {"error"}


def test_bob_lists_none_of_alices_connections(alice, bob, pg_ctx, pg_url):
    alice.request("POST", "/pg/save", json={**frontend_fields(pg_url), "userId": "alice"})
    assert bob.get("/pg/get?userId=bob").get_json() == {"items": [], "count": 0}
    assert bob.get("/pg/get?userId=alice").status_code == 403


@contextlib.contextmanager
def tls_breaking_front(pg_url) -> Iterator[tuple[int, list[str]]]:
    """A server that says yes to TLS and then breaks the handshake, and passes plain connections on to the real
    Postgres: what libpq's prefer retries without TLS. Yields (its port, how each connection began)."""
    seen: list[str] = []

    class Front(socketserver.BaseRequestHandler):
        def handle(self):
            first = self.request.recv(8)
            if first == struct.pack("!ii", 8, 80877103):  # SSLRequest
                seen.append("tls")
                self.request.sendall(b"S" + b"this is not a TLS server hello" * 4)
                return
            seen.append("plain")
            with socket.create_connection((pg_url.host, pg_url.port or 5432)) as upstream:
                upstream.sendall(first)
                _pump(self.request, upstream)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Front)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()


def _pump(client: socket.socket, upstream: socket.socket) -> None:
    sockets = [client, upstream]
    while True:
        readable, _, _ = select.select(sockets, [], [], 10)
        if not readable:
            return
        for source in readable:
            data = source.recv(65536)
            if not data:
                return
            (upstream if source is client else client).sendall(data)


def test_prefer_asks_again_without_tls_when_the_handshake_fails_and_require_does_not(alice, pg_ctx, pg_url):
    with tls_breaking_front(pg_url) as (port, seen):
        tested = alice.request("POST", "/pg/test", json=frontend_fields(pg_url, host="127.0.0.1", port=str(port)))
        assert tested.get_json() == {"ok": True} and seen == ["tls", "plain"]
        seen.clear()
        required = alice.request("POST", "/pg/test", json=frontend_fields(pg_url, host="127.0.0.1", port=str(port),
                                                                         sslmode="require"))
        assert required.status_code == 502 and seen == ["tls"]
        assert required.get_json()["ok"] is False and "TLS handshake failed" in required.get_json()["error"]
