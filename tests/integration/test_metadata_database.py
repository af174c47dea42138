"""The emulator's metadata database on Postgres (issue 10, item 6): a database DATABASE_URL names but the server
lacks is created when the server allows, and otherwise the emulator refuses to start saying what to do, instead
of answering 503 and "metadata database error" to every request while only its log says why."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
import sqlalchemy as sa

from common.errors import ConfigurationError
from common.metadata.sql_engine import ensure_database
from tests.conftest import require_service

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def server_url() -> sa.URL:
    return sa.make_url(require_service("TEST_POSTGRES_URL", "PostgreSQL"))


@pytest.fixture
def missing_database(server_url):
    name = f"convo_missing_{uuid.uuid4().hex[:8]}"
    yield name
    _admin(server_url, f'DROP DATABASE IF EXISTS "{name}"')


def _admin(url: sa.URL, statement: str) -> None:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        connection.execute(sa.text(statement))
    engine.dispose()


def _exists(url: sa.URL, name: str) -> bool:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        found = connection.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
    engine.dispose()
    return found is not None


def test_a_missing_database_is_created_once(server_url, missing_database):
    url = server_url.set(database=missing_database).render_as_string(hide_password=False)
    assert ensure_database(url) is True
    assert _exists(server_url, missing_database)
    assert ensure_database(url) is False  # there now: nothing to do


def test_a_user_who_may_not_create_it_is_told_what_to_do(server_url, missing_database):
    role = f"convo_nocreate_{uuid.uuid4().hex[:6]}"
    _admin(server_url, f'CREATE ROLE "{role}" LOGIN NOCREATEDB')
    try:
        url = server_url.set(username=role, password=None, database=missing_database)
        with pytest.raises(ConfigurationError) as raised:
            ensure_database(url.render_as_string(hide_password=False))
        message = raised.value.message
        assert f"{missing_database!r} does not exist" in message and f"createdb {missing_database}" in message
        assert "permission denied" in message
        assert not _exists(server_url, missing_database)
    finally:
        _admin(server_url, f'DROP ROLE IF EXISTS "{role}"')


def test_an_unreachable_server_is_named():
    with pytest.raises(ConfigurationError) as raised:
        ensure_database("postgresql+pg8000://postgres@127.0.0.1:1/convo")
    assert "cannot reach the metadata database 'convo' at 127.0.0.1:1" in raised.value.message


def test_sqlite_needs_nothing(tmp_path):
    assert ensure_database(f"sqlite:///{tmp_path}/m.sqlite3") is False


def test_the_emulator_refuses_to_start_with_the_reason(server_url, missing_database, tmp_path):
    role = f"convo_nocreate_{uuid.uuid4().hex[:6]}"
    _admin(server_url, f'CREATE ROLE "{role}" LOGIN NOCREATEDB')
    try:
        url = server_url.set(username=role, password=None, database=missing_database)
        env = {**os.environ, "DATABASE_URL": url.render_as_string(hide_password=False), "METADATA_BACKEND": "sql"}
        done = subprocess.run([sys.executable, "-m", "local_emulator", "--port", "1", "--data-dir", str(tmp_path),
                               "--no-warm-up", "--cleanup-interval", "0"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode != 0
        assert f"cannot start: the metadata database {missing_database!r} does not exist" in done.stderr
    finally:
        _admin(server_url, f'DROP ROLE IF EXISTS "{role}"')
