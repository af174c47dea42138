"""Engines for saved connections: escaped URLs, sslmode mapping, the bounded engine cache, driver errors."""

from __future__ import annotations

import ssl

import pytest

from common import errors
from common.analysis.sql_engine import SqlError, SqlTimeout, SqlTooExpensive
from common.analysis.sql_policy import SqlRejected
from common.config import Settings
from common.services.postgres.connections import ConnectionParams
from common.services.postgres.engines import EngineCache, build_engine, connection_url, driver_error, ssl_context_for

AWKWARD_PASSWORD = "p@ss:w/rd?#%&=ü "


def params(**overrides) -> ConnectionParams:
    values = {"host": "db.example.com", "port": 6543, "dbname": "my db/x", "user": "me@corp:1",
              "password": AWKWARD_PASSWORD, "sslmode": "disable"}
    return ConnectionParams(**{**values, **overrides})


def test_url_escapes_password_user_and_database():
    from sqlalchemy.engine import make_url

    url = connection_url(params())
    rendered = url.render_as_string(hide_password=False)
    assert AWKWARD_PASSWORD not in rendered  # escaped, not pasted
    parsed = make_url(rendered)
    assert (parsed.username, parsed.password, parsed.host, parsed.port, parsed.database) == \
        ("me@corp:1", AWKWARD_PASSWORD, "db.example.com", 6543, "my db/x")


def test_the_driver_receives_the_exact_password():
    engine = build_engine(params(), Settings.from_env({}))
    try:
        _, connect_args = engine.dialect.create_connect_args(engine.url)
        assert connect_args["password"] == AWKWARD_PASSWORD
        assert connect_args["user"] == "me@corp:1" and connect_args["database"] == "my db/x"
    finally:
        engine.dispose()


def test_an_empty_password_sends_none():
    assert connection_url(params(password="")).password is None


def test_sslmode_disable_require_and_verify_full():
    assert ssl_context_for("disable") is False
    require = ssl_context_for("require")
    assert (require.verify_mode, require.check_hostname) == (ssl.CERT_NONE, False)
    verify = ssl_context_for("verify-full")
    assert (verify.verify_mode, verify.check_hostname) == (ssl.CERT_REQUIRED, True)


class FakeEngine:
    def __init__(self, label: str):
        self.label, self.disposed = label, False

    def dispose(self) -> None:
        self.disposed = True


def test_cache_reuses_an_engine_while_its_record_is_unchanged():
    cache = EngineCache()
    first = cache.get(("alice", "main"), (1, "v1"), lambda: FakeEngine("a"), capacity=4)
    again = cache.get(("alice", "main"), (1, "v1"), lambda: FakeEngine("b"), capacity=4)
    assert again is first and not first.disposed


def test_cache_disposes_the_engine_of_a_changed_record():
    cache = EngineCache()
    old = cache.get(("alice", "main"), (1, "v1"), lambda: FakeEngine("old"), capacity=4)
    new = cache.get(("alice", "main"), (2, "v2"), lambda: FakeEngine("new"), capacity=4)
    assert new is not old and old.disposed and not new.disposed


def test_cache_is_bounded_and_disposes_the_least_recently_used():
    cache = EngineCache()
    engines = {name: cache.get(("t", name), (1,), lambda name=name: FakeEngine(name), capacity=2)
               for name in ("a", "b")}
    cache.get(("t", "a"), (1,), lambda: FakeEngine("unused"), capacity=2)  # touch a: b is now the oldest
    cache.get(("t", "c"), (1,), lambda: FakeEngine("c"), capacity=2)
    assert engines["b"].disposed and not engines["a"].disposed and len(cache) == 2


def test_forget_and_clear_dispose():
    cache = EngineCache()
    a = cache.get(("t", "a"), (1,), lambda: FakeEngine("a"), capacity=4)
    b = cache.get(("t", "b"), (1,), lambda: FakeEngine("b"), capacity=4)
    cache.forget(("t", "a"))
    cache.forget(("t", "missing"))
    assert a.disposed and not b.disposed
    cache.clear()
    assert b.disposed and len(cache) == 0


class DriverError(Exception):
    pass


@pytest.mark.parametrize("state,error_class,code", [
    ("57014", SqlTimeout, "SQL_TIMEOUT"),
    ("25006", SqlRejected, "SQL_REJECTED"),
    ("42P01", errors.NotFound, "TABLE_NOT_FOUND"),
    ("42P07", errors.Conflict, "TABLE_EXISTS"),
    ("42501", errors.Forbidden, "PG_PERMISSION_DENIED"),
    ("28P01", errors.UpstreamError, "PG_AUTH_FAILED"),
    ("22P02", SqlError, "PG_REJECTED"),
    ("23505", SqlError, "PG_REJECTED"),
    ("42703", SqlError, "SQL_ERROR"),
    ("XX000", errors.UpstreamError, "PG_ERROR"),
    ("54000", SqlTooExpensive, "SQL_TOO_EXPENSIVE"),
    ("53200", SqlTooExpensive, "SQL_TOO_EXPENSIVE"),
    ("53300", errors.ServiceUnavailable, "PG_BUSY"),
])
def test_driver_errors_become_app_errors_by_sqlstate(state, error_class, code):
    error = driver_error(DriverError({"C": state, "M": "what the server said", "S": "ERROR"}))
    assert type(error) is error_class and error.code == code
    assert error.message.endswith("what the server said")


def test_a_network_failure_is_an_upstream_error():
    error = driver_error(DriverError("Can't create a connection to host x and port 5432"))
    assert isinstance(error, errors.UpstreamError) and error.code == "PG_UNREACHABLE"
