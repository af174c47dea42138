"""Functions through their real functions-framework apps, behind the emulator's gateway routing,
on real backends: local files + SQLite always, GCS (emulator) + Postgres when the services run."""

from __future__ import annotations

import io
import uuid

import pytest
from werkzeug.test import Client

from common import bootstrap
from common.config import Settings
from common.gateway import route_table
from local_emulator.server import GatewayDispatcher, load_function_apps
from tests.conftest import require_service
from tests.doubles import anonymous_signing_credentials
from tests.integration.pipeline_fixtures import analyst, answer_cache_ttl, extra_settings, pipeline  # noqa: F401


@pytest.fixture(scope="session")
def function_apps():
    return load_function_apps()


def _local_sqlite(tmp_path, prefix):
    settings = Settings.from_env({}, data_dir=str(tmp_path / "data"))
    return settings, {}


def _gcs_postgres_redis(tmp_path, prefix):
    from google.cloud import storage

    from common.metadata.sql import SqlMetadataStore
    from common.metadata.sql_engine import create_engine_for
    from common.storage.gcs import GcsBlobStore

    require_service("STORAGE_EMULATOR_HOST", "GCS emulator")
    url = require_service("TEST_POSTGRES_URL", "PostgreSQL")
    redis_url = require_service("TEST_REDIS_URL", "Redis")
    client = storage.Client(project="test-proj", credentials=anonymous_signing_credentials())
    bucket = f"it-{prefix}"
    client.create_bucket(bucket)
    settings = Settings.from_env({}, data_dir=str(tmp_path / "data"), storage_backend="gcs", gcs_bucket=bucket,
                                 database_url=url, collection_prefix=f"{prefix}_", cache_backend="redis",
                                 redis_url=redis_url)
    parts = {"blobs": GcsBlobStore(bucket, client),
             "metadata": SqlMetadataStore(create_engine_for(url), table_prefix=f"{prefix}_")}
    return settings, parts


BACKENDS = {"local-sqlite-memory": _local_sqlite, "gcs-postgres-redis": _gcs_postgres_redis}


@pytest.fixture(params=sorted(BACKENDS))
def ctx(request, tmp_path, unique_prefix):
    settings, parts = BACKENDS[request.param](tmp_path, unique_prefix)
    context = bootstrap.build(settings, **parts)
    bootstrap.use(context)
    yield context
    bootstrap.use(None)
    metadata = context.__dict__.get("metadata")
    engine = getattr(metadata, "_engine", None)
    if engine is not None and engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.exec_driver_sql(f'DROP TABLE IF EXISTS "{unique_prefix}_records"')
        engine.dispose()


@pytest.fixture
def client(function_apps, ctx) -> Client:
    return Client(GatewayDispatcher(function_apps, route_table()))


class Api:
    """A caller: a werkzeug client that always says who it is."""

    def __init__(self, client: Client, user: str):
        self.client, self.user = client, user

    def request(self, method: str, path: str, **kwargs):
        headers = {"X-User-Id": self.user, **kwargs.pop("headers", {})}
        return self.client.open(path, method=method, headers=headers, **kwargs)

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def delete(self, path, **kwargs):
        return self.request("DELETE", path, **kwargs)

    def upload(self, domain: str, *files: tuple[str, bytes], path: str = "/api/v1/datasets", field: str = "file"):
        data = {"domain": domain} if domain is not None else {}
        data[field] = [(io.BytesIO(content), name) for name, content in files]
        return self.request("POST", path, data=data, content_type="multipart/form-data")


@pytest.fixture(scope="module")
def whisper():
    """A scripted speech-to-text server on loopback (tests/transcription_server.py), one per test module."""
    from tests.transcription_server import TranscriptionServer

    server = TranscriptionServer()
    yield server
    server.close()


@pytest.fixture
def alice(client) -> Api:
    return Api(client, "alice")


@pytest.fixture
def bob(client) -> Api:
    return Api(client, "bob")


def unique_name(stem: str = "data", ext: str = "csv") -> str:
    return f"{stem}-{uuid.uuid4().hex[:6]}.{ext}"


@pytest.fixture
def keyed(ctx):
    """The test's context, with the ENCRYPTION_KEYS that saved keys and passwords need."""
    from common.crypto import generate_key

    context = bootstrap.build(ctx.settings.replace(encryption_keys=generate_key()), clock=ctx.clock,
                              blobs=ctx.blobs, metadata=ctx.metadata)
    bootstrap.use(context)
    return context


def use_settings(context, **overrides):
    """Install a context like ``context`` (the same stores) with some settings changed; return it."""
    changed = bootstrap.build(context.settings.replace(**overrides), clock=context.clock, blobs=context.blobs,
                              metadata=context.metadata)
    bootstrap.use(changed)
    return changed


def assert_error(response, status: int, code: str | None = None) -> dict:
    """Assert the v1 error shape and status (and code); return the error."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    assert code is None or body["error"]["code"] == code, body
    return body["error"]


@pytest.fixture
def rebinding_dns(monkeypatch):
    """The system resolver, except that ``rebind.test`` now answers 127.0.0.2, where nothing listens."""
    import socket

    from common import hosts

    real = hosts._system_getaddrinfo

    def resolve(host, port, *args, **kwargs):
        return real("127.0.0.2" if host == "rebind.test" else host, port, *args, **kwargs)

    monkeypatch.setattr(hosts, "_system_getaddrinfo", resolve)
    monkeypatch.setattr(socket, "getaddrinfo", resolve)  # as if nothing had pinned anything yet
