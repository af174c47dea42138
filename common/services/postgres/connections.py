"""A tenant's saved Postgres connections: validated at the edge, stored with the password encrypted.

A connection is a record in ``pg_connections`` keyed by its name, per tenant. The password is kept only as
MultiFernet ciphertext (``ENCRYPTION_KEYS``: the first key encrypts, every key decrypts). Rotating the key:
put the new key first (``B,A``); saved connections keep working through the old key, and every save
re-encrypts under the new one (the stored password is decrypted and encrypted again when none is sent), so
once every connection has been saved again the old key can be dropped. No view ever holds the password or its
ciphertext.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from typing import Any

from common import audit, errors
from common.auth import Tenant
from common.config import Settings
from common.hosts import HostPolicy
from common.metadata import Record
from common.ports import SecretPorts
from common.services.postgres import engines

COLLECTION = "pg_connections"
SSL_MODES = ("require", "verify-full", "disable")  # engines.ssl_context_for says what each one does
DEFAULT_SSLMODE = "require"
# libpq's default: the original API's routes use it when no sslmode is sent (and accept it when one is); v1
# names its choice among SSL_MODES, and shows "prefer" on a connection the original's routes saved.
PREFER_SSLMODE = "prefer"
DEFAULT_SCHEMA = "public"
FIELDS = ("name", "host", "port", "dbname", "user", "password", "sslmode", "schema")
# Words that would make a path (/api/v1/postgres/connections/...) or a question token (pg:table:x) ambiguous.
RESERVED_NAMES = frozenset({"connections", "table", "query", "*"})
MAX_NAME_CHARS = 63
MAX_IDENTIFIER_BYTES = 63  # Postgres silently truncates longer identifiers (NAMEDATALEN - 1)
MAX_PASSWORD_CHARS = 1024
_HOST = re.compile(r"[A-Za-z0-9._:\-]{1,253}")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def check_name(raw: Any) -> str:
    """Check a connection name: 1-63 characters, no control character, '/' or ':', not a reserved word."""
    if not isinstance(raw, str):
        raise errors.BadRequest("the connection name must be a string", code="INVALID_NAME")
    if not 1 <= len(raw) <= MAX_NAME_CHARS or raw != raw.strip():
        raise errors.BadRequest(f"the connection name must be 1 to {MAX_NAME_CHARS} characters, without "
                                f"leading or trailing spaces", code="INVALID_NAME")
    if _CONTROL.search(raw) or "/" in raw or ":" in raw or raw in {".", ".."}:
        raise errors.BadRequest("the connection name may not contain control characters, '/' or ':'",
                                code="INVALID_NAME")
    if raw.lower() in RESERVED_NAMES:
        raise errors.BadRequest(f"{raw!r} is reserved; choose another connection name", code="INVALID_NAME")
    return raw


def check_identifier(raw: Any, what: str) -> str:
    """Check a Postgres identifier (schema, table, column): 1-63 UTF-8 bytes, no control characters."""
    if not isinstance(raw, str):
        raise errors.BadRequest(f"the {what} must be a string", code="INVALID_NAME")
    if not raw or len(raw.encode("utf-8")) > MAX_IDENTIFIER_BYTES:
        raise errors.BadRequest(f"the {what} must be 1 to {MAX_IDENTIFIER_BYTES} bytes long", code="INVALID_NAME")
    if _CONTROL.search(raw):
        raise errors.BadRequest(f"the {what} may not contain control characters", code="INVALID_NAME")
    return raw


@dataclasses.dataclass(frozen=True)
class ConnectionParams:
    host: str
    port: int
    dbname: str
    user: str
    password: str | None  # None: keep the stored one (on save), none at all (on connect)
    sslmode: str = DEFAULT_SSLMODE
    schema: str = DEFAULT_SCHEMA


def parse_params(body: dict[str, Any], *, default_sslmode: str = DEFAULT_SSLMODE) -> ConnectionParams:
    """Validate connection fields (host, port as int or numeric string, dbname, user, password, sslmode,
    schema) before any I/O; ``default_sslmode`` applies when the body names none, and may be named too."""
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise errors.BadRequest(f"unknown field(s): {', '.join(unknown)}; allowed: {', '.join(FIELDS)}")
    missing = [field for field in ("host", "dbname", "user") if body.get(field) in (None, "")]
    if missing:
        raise errors.BadRequest(f"missing field(s): {', '.join(missing)}", code="MISSING_FIELD")
    sslmode = body.get("sslmode") or default_sslmode
    allowed = SSL_MODES if default_sslmode in SSL_MODES else (*SSL_MODES, default_sslmode)
    if sslmode not in allowed:
        raise errors.BadRequest(f"'sslmode' must be one of {', '.join(allowed)}, got {sslmode!r}")
    return ConnectionParams(host=_host(body["host"]), port=_port(body.get("port", 5432)),
                            dbname=_login_field(body["dbname"], "dbname"), user=_login_field(body["user"], "user"),
                            password=_password(body.get("password")), sslmode=sslmode,
                            schema=check_identifier(body.get("schema") or DEFAULT_SCHEMA, "schema"))


def _host(raw: Any) -> str:
    if not isinstance(raw, str) or not _HOST.fullmatch(raw.strip("[]")) or raw.startswith("-"):
        raise errors.BadRequest("'host' must be a host name or IP address (letters, digits, '.', '-', ':'), "
                                "without spaces, slashes or credentials", code="INVALID_HOST")
    return raw.strip("[]")


def _port(raw: Any) -> int:
    if isinstance(raw, str) and raw.strip().isdigit() and raw.strip().isascii():
        raw = int(raw.strip())
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= 65535:
        raise errors.BadRequest(f"'port' must be an integer from 1 to 65535, got {raw!r}", code="INVALID_PORT")
    return raw


def _login_field(raw: Any, field: str) -> str:
    if not isinstance(raw, str) or "\x00" in raw or _CONTROL.search(raw):
        raise errors.BadRequest(f"'{field}' must be a string without control characters")
    if len(raw.encode("utf-8")) > MAX_IDENTIFIER_BYTES:
        raise errors.BadRequest(f"'{field}' may be at most {MAX_IDENTIFIER_BYTES} bytes")
    return raw


def _password(raw: Any) -> str | None:
    if raw is None:
        return None
    # NUL ends a string in the Postgres protocol: a password holding one could never be sent whole.
    if not isinstance(raw, str) or "\x00" in raw or len(raw) > MAX_PASSWORD_CHARS:
        raise errors.BadRequest(f"'password' must be a string of at most {MAX_PASSWORD_CHARS} characters "
                                f"without NUL")
    return raw


def save(pg: SecretPorts, tenant: Tenant, name: str, params: ConnectionParams) -> tuple[Record, bool]:
    """Create or replace the connection ``name``; return (record, created). The host policy is checked first."""
    HostPolicy.from_settings(pg.settings).vetted_addresses(params.host)
    try:
        existing = pg.metadata.get(COLLECTION, tenant.user_id, name)
    except errors.NotFound:
        existing = None
    password = params.password
    if password is None:
        password = pg.encryptor.decrypt(existing.data["password_enc"]) if existing else ""
    data = {"name": name, "host": params.host, "port": params.port, "dbname": params.dbname, "user": params.user,
            "sslmode": params.sslmode, "schema": params.schema, "password_enc": pg.encryptor.encrypt(password),
            "has_password": password != "",
            # A fresh version per save: a connection deleted and created again never reuses a cached engine.
            "version": uuid.uuid4().hex}
    record = pg.metadata.put(COLLECTION, tenant.user_id, name, data,
                             expected_revision=existing.revision if existing else None)
    engines.ENGINES.forget((tenant.user_id, name))
    return record, existing is None


def get(pg: SecretPorts, tenant: Tenant, name: str) -> Record:
    """Return the tenant's connection record ``name``, or raise a 404."""
    try:
        return pg.metadata.get(COLLECTION, tenant.user_id, check_name(name))
    except errors.NotFound:
        raise errors.NotFound(f"no Postgres connection named {name!r}", code="CONNECTION_NOT_FOUND") from None


def list_connections(pg: SecretPorts, tenant: Tenant) -> list[Record]:
    """Return the tenant's connection records, by name."""
    return pg.metadata.list(COLLECTION, tenant.user_id)


def delete(pg: SecretPorts, tenant: Tenant, name: str) -> None:
    """Remove the connection ``name`` (404 when missing) and close its pooled connections."""
    record = get(pg, tenant, name)
    pg.metadata.delete(COLLECTION, tenant.user_id, record.key)
    engines.ENGINES.forget((tenant.user_id, record.key))


def view(record: Record) -> dict[str, Any]:
    """Describe a connection for a response: never the password, nor its ciphertext."""
    data = record.data
    return {"name": data["name"], "host": data["host"], "port": data["port"], "dbname": data["dbname"],
            "user": data["user"], "sslmode": data["sslmode"], "schema": data["schema"],
            "has_password": data["has_password"],
            "created_at": record.created_at.isoformat(), "updated_at": record.updated_at.isoformat()}


def params_of(pg: SecretPorts, record: Record) -> ConnectionParams:
    """The stored connection's parameters with its password decrypted."""
    data = record.data
    return ConnectionParams(host=data["host"], port=data["port"], dbname=data["dbname"], user=data["user"],
                            password=pg.encryptor.decrypt(data["password_enc"]), sslmode=data["sslmode"],
                            schema=data["schema"])


def engine_for(pg: SecretPorts, tenant: Tenant, name: str, *, use: bool = True) -> tuple[Record, Any]:
    """Return (record, pooled engine) of the connection ``name``; the engine is rebuilt when the record changed.

    ``use``: the engine will run the caller's SQL, so the connection's first use ever is audited (a test is not).
    """
    record = get(pg, tenant, name)
    if use:
        # Before the fingerprint: flagging bumps the revision, and the engine is keyed on the flagged record.
        record = audit.first_use(pg, COLLECTION, record, "postgres_connection.first_use",
                                 f"postgres_connection/{record.key}", details={"name": record.key})
    fingerprint = (record.revision, record.data["version"], engines.settings_fingerprint(pg.settings))
    engine = engines.ENGINES.get((tenant.user_id, record.key), fingerprint,
                                 lambda: engines.build_engine(params_of(pg, record), pg.settings),
                                 capacity=pg.settings.pg_engine_cache_size)
    return record, engine


def check_saved(pg: SecretPorts, tenant: Tenant, name: str) -> dict[str, Any]:
    """Connect with the saved connection ``name``; return its server version, or raise why it failed."""
    record, engine = engine_for(pg, tenant, name, use=False)
    return {"ok": True, "name": record.key, "server_version": engines.ping(engine, pg.settings)}


def check_params(settings: Settings, params: ConnectionParams) -> str:
    """Connect once with unsaved parameters (nothing is kept); return the server version."""
    engine = engines.build_engine(params, settings, pooled=False)
    try:
        return engines.ping(engine, settings)
    finally:
        engine.dispose()
