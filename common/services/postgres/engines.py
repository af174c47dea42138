"""SQLAlchemy engines for saved connections, and the one place driver errors become ``common.errors``.

The URL is built with ``URL.create`` (user, password and database are escaped for free: a password holding
``@:/`` works). Every new connection first passes the host policy (``hosts``): the host is resolved, each
address checked, and the socket opened to a checked address and handed to pg8000, which never resolves the
name itself. The TCP connect is bounded by ``PG_CONNECT_TIMEOUT_SECONDS``; reads by that plus
``PG_STATEMENT_TIMEOUT_SECONDS``, so a silent server cannot hold a request.

sslmode, mapped to pg8000's ``ssl_context``:
- ``require`` (v1's default): TLS without certificate verification, like libpq's ``require``. The traffic is
  encrypted against eavesdroppers, and a server without TLS is refused; an active man in the middle is not.
- ``verify-full``: TLS verified against the system CA bundle, host name included (libpq's ``verify-full``):
  the mode to use across untrusted networks.
- ``prefer`` (libpq's default, so the original API's, and its routes' default here): TLS without verification
  when the server offers it, else plain text, also when the TLS handshake fails (libpq retries the same way).
  It works with any server, and it is only as safe as the network: whoever sits in the middle can answer
  "no TLS".
- ``disable``: no TLS (a local database, or one on a private network the operator allowed).

Engines are pooled and cached per instance (``ENGINES``), at most ``PG_ENGINE_CACHE_SIZE``, keyed by tenant
and connection name and fingerprinted by the record's revision and version: a changed or deleted connection
disposes its engine, and the least recently used engine is disposed when the cache is full.

Each cached engine (a saved connection) has a circuit breaker (``common.breakers``, named
``postgres:<user>/<connection>``): every ``transaction`` passes it. When the server cannot be reached
(PG_UNREACHABLE, PG_UNAVAILABLE) BREAKER_FAILURE_THRESHOLD times in a row, the breaker opens, and for
BREAKER_RESET_SECONDS a transaction fails at once with DEPENDENCY_UNAVAILABLE without opening a socket; then one
probes the server again. Bad SQL, a refused login or a missing table are answers and never open it. Unsaved
parameters being checked (``check_params``) have no breaker.
"""

from __future__ import annotations

import collections
import contextlib
import socket
import ssl
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from common import errors
from common.analysis.sql_errors import SqlError, SqlTimeout, SqlTooExpensive
from common.analysis.sql_policy import SqlRejected
from common.hosts import HostPolicy

if TYPE_CHECKING:
    from common.config import Settings

DRIVER = "postgresql+pg8000"
POOL_SIZE = 2
POOL_OVERFLOW = 3
POOL_RECYCLE_SECONDS = 300
APPLICATION_NAME = "convoinsight"


def connection_url(params: Any) -> Any:
    """Return the SQLAlchemy URL of ``params`` (a ConnectionParams); every part is escaped by SQLAlchemy."""
    from sqlalchemy.engine import URL

    return URL.create(DRIVER, username=params.user, password=params.password or None, host=params.host,
                      port=params.port, database=params.dbname)


def ssl_context_for(sslmode: str) -> ssl.SSLContext | bool | None:
    """Map an sslmode to pg8000's ``ssl_context`` (see the module docstring)."""
    if sslmode == "disable":
        return False
    if sslmode == "prefer":
        return None  # pg8000 asks for TLS (unverified), and goes on in plain text when the server says no
    context = ssl.create_default_context()
    if sslmode == "require":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def settings_fingerprint(settings: Settings) -> tuple:
    """The settings an engine is built with: an engine built under other settings is rebuilt."""
    return (settings.environment, settings.pg_allowed_hosts, settings.pg_connect_timeout_seconds,
            settings.pg_statement_timeout_seconds)


def build_engine(params: Any, settings: Settings, *, pooled: bool = True) -> Any:
    """Return an engine for ``params`` whose every connection passes the host policy."""
    import pg8000
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    policy = HostPolicy.from_settings(settings)
    connect_timeout = settings.pg_connect_timeout_seconds
    read_timeout = connect_timeout + settings.pg_statement_timeout_seconds
    pool = {"pool_size": POOL_SIZE, "max_overflow": POOL_OVERFLOW, "pool_recycle": POOL_RECYCLE_SECONDS,
            "pool_timeout": connect_timeout} if pooled else {"poolclass": NullPool}
    engine = sa.create_engine(connection_url(params), pool_pre_ping=True,
                              connect_args={"ssl_context": ssl_context_for(params.sslmode),
                                            "application_name": APPLICATION_NAME}, **pool)

    @sa.event.listens_for(engine, "do_connect")
    def connect_to_a_vetted_address(dialect: Any, record: Any, cargs: Any, cparams: dict) -> Any:
        try:
            return _connect(params, policy, connect_timeout, read_timeout, cparams)
        except ssl.SSLError as exc:
            if params.sslmode != "prefer":
                raise pg8000.InterfaceError(f"the TLS handshake failed ({exc.reason or type(exc).__name__})") \
                    from None
        # libpq's prefer: a server that offered TLS but could not complete it is asked again without it.
        return _connect(params, policy, connect_timeout, read_timeout, {**cparams, "ssl_context": False})

    return engine


def _connect(params: Any, policy: HostPolicy, connect_timeout: float, read_timeout: float, cparams: dict) -> Any:
    """Open a pg8000 connection over a socket to a vetted address of ``params.host``."""
    import pg8000

    sock = open_socket(params.host, params.port, policy, connect_timeout, read_timeout)
    try:
        return pg8000.Connection(sock=sock, **cparams)
    except ssl.SSLError:
        sock.close()
        raise
    except OSError as exc:  # a reset or timeout before pg8000 could name it: a driver error, not a crash
        sock.close()
        raise pg8000.InterfaceError(f"the connection broke while opening ({exc.strerror or type(exc).__name__})") \
            from None
    except BaseException:
        sock.close()
        raise


def open_socket(host: str, port: int, policy: HostPolicy, connect_timeout: float, read_timeout: float,
                resolver: Callable[[str], list[str]] | None = None) -> socket.socket:
    """Connect to the first reachable address of ``host`` that the policy allows."""
    addresses = policy.vetted_addresses(host, resolver) if resolver else policy.vetted_addresses(host)
    failure: OSError | None = None
    for address in addresses:
        sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(connect_timeout)
        try:
            sock.connect((address, port))
        except OSError as exc:
            sock.close()
            failure = exc
            continue
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.settimeout(read_timeout)
        return sock
    reason = "timed out" if isinstance(failure, TimeoutError) else (getattr(failure, "strerror", None) or failure)
    raise errors.UpstreamError(f"cannot reach {host}:{port}: {reason}", code="PG_UNREACHABLE")


# engine -> the name of its saved connection's breaker; an engine dropped from the cache drops out of it.
_BREAKER_NAMES: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


class EngineCache:
    """A bounded, thread-safe map of (tenant, name) -> engine, disposing what it drops."""

    def __init__(self) -> None:
        self._engines: collections.OrderedDict[tuple, tuple[tuple, Any]] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple, fingerprint: tuple, build: Callable[[], Any], *, capacity: int) -> Any:
        """Return the engine cached for ``key`` if built for ``fingerprint``, else build (and cache) a new one."""
        stale = []
        with self._lock:
            entry = self._engines.get(key)
            if entry is not None and entry[0] == fingerprint:
                self._engines.move_to_end(key)
                return entry[1]
            if entry is not None:
                stale.append(entry[1])
            engine = build()  # building connects nothing, so holding the lock is cheap
            _BREAKER_NAMES[engine] = _breaker_name(key)
            self._engines[key] = (fingerprint, engine)
            while len(self._engines) > max(capacity, 1):
                stale.append(self._engines.popitem(last=False)[1][1])
        for old in stale:
            old.dispose()
        return engine

    def forget(self, key: tuple) -> None:
        """Drop and dispose the engine of ``key``, if any (its connection changed or was deleted)."""
        with self._lock:
            entry = self._engines.pop(key, None)
        if entry is not None:
            entry[1].dispose()

    def clear(self) -> None:
        """Dispose every cached engine (instance shutdown; tests that drop their database objects)."""
        with self._lock:
            dropped = [engine for _, engine in self._engines.values()]
            self._engines.clear()
        for engine in dropped:
            engine.dispose()

    def __len__(self) -> int:
        return len(self._engines)


ENGINES = EngineCache()


def _breaker_name(key: tuple) -> str:
    from common.breakers import names

    return names.postgres_connection(*(str(part) for part in key))


def _breaker(engine: Any, settings: Settings) -> contextlib.AbstractContextManager:
    """The saved connection's breaker around a transaction; nothing for an engine of unsaved parameters."""
    name = _BREAKER_NAMES.get(engine)
    if name is None:
        return contextlib.nullcontext()
    from common.breakers import registry_for
    from common.breakers.failures import is_postgres_outage

    return registry_for(settings).guard(name).watching(is_postgres_outage)


@contextlib.contextmanager
def transaction(engine: Any, settings: Settings, *, read_only: bool, schema: str | None = None) -> Iterator[Any]:
    """Yield a connection inside one transaction with the statement timeout (and search path) set locally."""
    import sqlalchemy as sa

    timeout_ms = str(int(settings.pg_statement_timeout_seconds * 1000))
    with _breaker(engine, settings), translated(), engine.connect() as connection, connection.begin():
        if read_only:
            connection.exec_driver_sql("SET TRANSACTION READ ONLY")
        options = [sa.func.set_config("statement_timeout", timeout_ms, True)]
        if schema is not None:
            # The schema's tables come before pg_catalog's, so a user table named like a catalog one wins.
            path = f"{connection.dialect.identifier_preparer.quote_identifier(schema)}, pg_catalog"
            options.append(sa.func.set_config("search_path", path, True))
        connection.execute(sa.select(*options))
        yield connection


def ping(engine: Any, settings: Settings) -> str:
    """Open (or reuse) a connection and return the server's version: the connection works."""
    with transaction(engine, settings, read_only=True) as connection:
        return str(connection.exec_driver_sql("SHOW server_version").scalar())


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Turn SQLAlchemy and pg8000 errors into ``common.errors``, without statements or parameters."""
    import sqlalchemy.exc as sa_errors

    try:
        yield
    except sa_errors.NoSuchTableError as exc:
        raise errors.NotFound(f"no table {str(exc)!r} in this connection's schema", code="TABLE_NOT_FOUND") \
            from None
    except sa_errors.DBAPIError as exc:
        raise driver_error(exc.orig) from None
    except sa_errors.TimeoutError:
        raise errors.ServiceUnavailable("every connection to this database is busy; retry shortly") from None


# SQLSTATE (exact, then class) -> error class, code and message prefix.
_BY_STATE: dict[str, tuple[type[errors.AppError], str, str]] = {
    "57014": (SqlTimeout, "SQL_TIMEOUT", "the statement ran longer than PG_STATEMENT_TIMEOUT_SECONDS"),
    "25006": (SqlRejected, "SQL_REJECTED", "only read-only statements are allowed here"),
    "42P01": (errors.NotFound, "TABLE_NOT_FOUND", "no such table"),
    "3F000": (errors.NotFound, "SCHEMA_NOT_FOUND", "the connection's schema does not exist"),
    "42P07": (errors.Conflict, "TABLE_EXISTS", "the table already exists"),
    "42501": (errors.Forbidden, "PG_PERMISSION_DENIED", "the database user may not do this"),
    "3D000": (errors.UpstreamError, "PG_CONNECT_FAILED", "the database does not exist"),
    "28": (errors.UpstreamError, "PG_AUTH_FAILED", "the database refused the credentials"),
    "08": (errors.UpstreamError, "PG_UNREACHABLE", "the connection failed"),
    # A query that needs more than the server allows (a value over its 1 GB, memory) can be written smaller.
    "53200": (SqlTooExpensive, "SQL_TOO_EXPENSIVE", "the database ran out of memory for the statement"),
    "54": (SqlTooExpensive, "SQL_TOO_EXPENSIVE", "the statement needs more than the database allows"),
    "53": (errors.ServiceUnavailable, "PG_BUSY", "the database is out of resources"),
    "57": (errors.ServiceUnavailable, "PG_UNAVAILABLE", "the database is shutting down"),
    "22": (SqlError, "PG_REJECTED", "the database rejected a value"),
    "23": (SqlError, "PG_REJECTED", "the database rejected a row"),
    "42": (SqlError, "SQL_ERROR", "the database refused the statement"),
}


def driver_error(orig: Any) -> errors.AppError:
    """Translate one pg8000 exception (its SQLSTATE, else a network failure) into an app error."""
    detail = orig.args[0] if getattr(orig, "args", None) else None
    if isinstance(detail, dict):
        state, message = str(detail.get("C", "")), str(detail.get("M", ""))
        error_class, code, prefix = _BY_STATE.get(state) or _BY_STATE.get(state[:2]) or \
            (errors.UpstreamError, "PG_ERROR", "the database failed")
        return error_class(f"{prefix}: {message}", code=code, details={"sqlstate": state})
    return errors.UpstreamError(f"the connection failed: {detail or type(orig).__name__}", code="PG_UNREACHABLE")
