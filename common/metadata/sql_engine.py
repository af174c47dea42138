"""Build the SQLAlchemy engine behind ``SqlMetadataStore``: SQLite locally, Postgres (or Cloud SQL) deployed."""

from __future__ import annotations

import pathlib
import time
from typing import Any

import sqlalchemy as sa

from common.errors import ConfigurationError

SQLITE_FILE_NAME = "metadata.sqlite3"
CONNECT_TIMEOUT_SECONDS = 10
# Postgres SQLSTATEs: the database named does not exist; another session created it first.
_INVALID_CATALOG_NAME, _DUPLICATE_DATABASE = "3D000", "42P04"
SQLITE_BUSY_TIMEOUT_SECONDS = 30
_PLAIN_POSTGRES_DRIVERS = {"postgres", "postgresql"}


def create_engine_for(url: str, *, cloud_sql_instance: str = "", data_dir: str = ".") -> sa.Engine:
    """Return an engine for ``url`` (SQLite in ``data_dir`` when empty; Cloud SQL when an instance is named)."""
    if cloud_sql_instance:
        return _cloud_sql_engine(url, cloud_sql_instance)
    if not url:
        directory = pathlib.Path(data_dir)
        directory.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{directory / SQLITE_FILE_NAME}"
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    if parsed.drivername in _PLAIN_POSTGRES_DRIVERS:
        # pg8000 is pure Python: the one Postgres driver this project installs (also what Cloud SQL uses).
        parsed = parsed.set(drivername="postgresql+pg8000")
    return sa.create_engine(parsed, pool_pre_ping=True)


def ensure_database(url: str) -> bool:
    """Make sure the Postgres database ``url`` names exists, creating it when the server allows; True if created.

    For the emulator's start (``DATABASE_URL=...postgres@127.0.0.1:5432/convo make run``): without it, a missing
    database surfaced only as 503s and a log line. Raises ``ConfigurationError`` saying what to do when the
    server cannot be reached, or the database does not exist and this user may not create it. SQLite files are
    created on first use and need nothing here.
    """
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return False
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    try:
        _connect_once(parsed)
        return False
    except sa.exc.SQLAlchemyError as exc:
        if _sqlstate(exc) != _INVALID_CATALOG_NAME:
            raise ConfigurationError(f"cannot reach the metadata database {parsed.database!r} at {where}: "
                                     f"{_reason(exc)}") from None
    try:
        _create_database(parsed)
    except sa.exc.SQLAlchemyError as exc:
        if _sqlstate(exc) == _DUPLICATE_DATABASE:
            return False
        raise ConfigurationError(
            f"the metadata database {parsed.database!r} does not exist at {where} and could not be created "
            f"({_reason(exc)}): create it (createdb {parsed.database}) or point DATABASE_URL at one that exists"
        ) from None
    return True


def _connect_once(url: sa.URL) -> None:
    engine = _postgres_engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(sa.select(1))
    finally:
        engine.dispose()


def _create_database(url: sa.URL) -> None:
    # CREATE DATABASE cannot run in a transaction; "postgres" is the maintenance database every server has.
    engine = _postgres_engine(url.set(database="postgres")).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            quoted = connection.dialect.identifier_preparer.quote_identifier(url.database)
            connection.execute(sa.text(f"CREATE DATABASE {quoted}"))
    finally:
        engine.dispose()


def _postgres_engine(url: sa.URL) -> sa.Engine:
    if url.drivername in _PLAIN_POSTGRES_DRIVERS:
        url = url.set(drivername="postgresql+pg8000")
    return sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args={"timeout": CONNECT_TIMEOUT_SECONDS})


def _sqlstate(exc: sa.exc.SQLAlchemyError) -> str | None:
    detail = getattr(exc, "orig", None)
    args = getattr(detail, "args", ())
    return args[0].get("C") if args and isinstance(args[0], dict) else None


def _reason(exc: sa.exc.SQLAlchemyError) -> str:
    detail = getattr(exc, "orig", None)
    args = getattr(detail, "args", ())
    if args and isinstance(args[0], dict):
        return args[0].get("M", str(detail))  # pg8000's server error: the message alone, not the whole record
    return str(detail or exc).splitlines()[0]


def _sqlite_engine(url: sa.URL) -> sa.Engine:
    # The emulator serves requests from several threads; each pooled connection may move between them.
    engine = sa.create_engine(url, connect_args={"check_same_thread": False,
                                                 "timeout": SQLITE_BUSY_TIMEOUT_SECONDS})

    @sa.event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _connection_record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # Wait for a competing writer instead of failing at once with "database is locked".
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_SECONDS * 1000}")
        # WAL lets readers proceed while one writer commits. The mode is kept in the file, so only the first
        # connection to a new file switches it.
        if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            _switch_to_wal(cursor)
        cursor.close()

    return engine


def _switch_to_wal(cursor: Any) -> None:
    """Set WAL, waiting out other connections: the switch needs the file to itself, and SQLite answers
    "database is locked" at once, without its busy handler, while another connection opens the same new file."""
    import sqlite3

    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_SECONDS
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _cloud_sql_engine(url: str, instance: str) -> sa.Engine:
    if not url:
        raise ConfigurationError("CLOUD_SQL_INSTANCE needs DATABASE_URL to name the user and database",
                                 details={"example": "postgresql+pg8000://user:password@/database"})
    credentials = sa.make_url(url)
    # Imported here only: the connector pulls in aiohttp and starts a background thread.
    from google.cloud.sql.connector import Connector

    connector = Connector()

    def connect() -> Any:
        return connector.connect(instance, "pg8000", user=credentials.username, password=credentials.password,
                                 db=credentials.database,
                                 # Without a password, log in as the service account (IAM database auth).
                                 enable_iam_auth=not credentials.password)

    return sa.create_engine("postgresql+pg8000://", creator=connect, pool_pre_ping=True)
