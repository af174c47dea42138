"""Build the SQLAlchemy engine behind ``SqlMetadataStore``: SQLite locally, Postgres (or Cloud SQL) deployed."""

from __future__ import annotations

import pathlib
import time
from typing import Any

import sqlalchemy as sa

from common.errors import ConfigurationError

SQLITE_FILE_NAME = "metadata.sqlite3"
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
