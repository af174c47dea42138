"""Fixtures for the question pipeline: every function on local backends, the local task dispatcher, the
scripted models behind the real LiteLLM path, and a client that waits for answers."""

from __future__ import annotations

import io
import time

import pytest
from werkzeug.test import Client

from common import bootstrap
from common.config import Settings
from common.gateway import route_table
from local_emulator.server import GatewayDispatcher, local_context
from tests.conftest import require_service
from tests.scripted_analyst import Analyst
from tests.scripted_llm import install_scripted_llm

SALES = b"region,revenue\nNorth,120\nSouth,80\nNorth,130\n"
SERVER_KEY = "sk-server-key-for-tests-0123456789"
CLOUD_PROJECT = "test-proj"


@pytest.fixture
def analyst():
    script = install_scripted_llm()
    script.reset()
    analyst = Analyst()
    script.respond("scripted/model", analyst)
    yield analyst
    assert script.unscripted == []


@pytest.fixture
def answer_cache_ttl() -> int:
    """Most tests ask the same question again and want it answered again: no answer reuse by default."""
    return 0


@pytest.fixture
def extra_settings() -> dict:
    """Settings a test module needs on top of the pipeline's (override this fixture)."""
    return {}


@pytest.fixture
def pipeline(function_apps, tmp_path, analyst, answer_cache_ttl, extra_settings):
    yield from _pipeline_client(function_apps, {
        "data_dir": str(tmp_path / "data"), "answer_cache_ttl_seconds": answer_cache_ttl, **extra_settings})


@pytest.fixture
def cloud_pipeline(function_apps, tmp_path, analyst, answer_cache_ttl, extra_settings, unique_prefix):
    """The pipeline as deployed, against the emulators ``tests/services.py`` starts: GCS, Firestore and Redis,
    each client built from settings as an instance builds it (the GCS emulator's credentials cannot sign)."""
    yield from _pipeline_client(function_apps, {
        "data_dir": str(tmp_path / "data"), "answer_cache_ttl_seconds": answer_cache_ttl,
        **cloud_settings(unique_prefix), **extra_settings})
    drop_cloud_collections(unique_prefix)


def cloud_settings(prefix: str) -> dict:
    """Settings for GCS, Firestore and Redis on the emulators, in a fresh bucket and collection prefix (skips
    when the services are not running)."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    require_service("STORAGE_EMULATOR_HOST", "GCS emulator")
    require_service("FIRESTORE_EMULATOR_HOST", "Firestore emulator")
    redis_url = require_service("TEST_REDIS_URL", "Redis")
    bucket = f"it-{prefix}"
    storage.Client(project=CLOUD_PROJECT, credentials=AnonymousCredentials()).create_bucket(bucket)
    return {"storage_backend": "gcs", "gcs_bucket": bucket, "metadata_backend": "firestore",
            "gcp_project": CLOUD_PROJECT, "collection_prefix": f"{prefix}_", "cache_backend": "redis",
            "redis_url": redis_url}


def drop_cloud_collections(prefix: str) -> None:
    """Remove what a test wrote to the Firestore emulator under ``prefix``."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore

    client = firestore.Client(project=CLOUD_PROJECT, credentials=AnonymousCredentials())
    for collection in client.collections():
        if collection.id.startswith(prefix):
            client.recursive_delete(collection)
    client.close()


def _pipeline_client(function_apps, settings: dict):
    settings = Settings.from_env({}, **{
        "llm_default_model": "scripted/model", "llm_default_api_keys": f"scripted={SERVER_KEY}",
        "query_wait_seconds": 30, **settings})
    context = local_context(settings, function_apps)
    bootstrap.use(context)
    context.llm._sleep = lambda seconds: None  # retries without waiting
    yield PipelineClient(Client(GatewayDispatcher(function_apps, route_table())), context)
    context.close()
    bootstrap.use(None)


class PipelineClient:
    """Calls the API as a user would, and waits for questions to finish."""

    def __init__(self, client: Client, context):
        self.client, self.context = client, context

    def call(self, method: str, path: str, user: str = "alice", **kwargs):
        headers = {"X-User-Id": user, **kwargs.pop("headers", {})}
        return self.client.open(path, method=method, headers=headers, **kwargs)

    def upload(self, domain: str, name: str = "sales.csv", content: bytes = SALES, user: str = "alice"):
        response = self.call("POST", "/api/v1/datasets", user=user, content_type="multipart/form-data",
                             data={"domain": domain, "file": (io.BytesIO(content), name)})
        assert response.status_code == 201, response.get_json()

    def ask(self, prompt: str, domain: str = "sales", user: str = "alice", **fields):
        response = self.call("POST", "/api/v1/queries", user=user, json={"domain": domain, "prompt": prompt,
                                                                          **fields})
        assert response.status_code == 202, response.get_json()
        return response.get_json()

    def wait(self, query_id: str, user: str = "alice", timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = self.call("GET", f"/api/v1/queries/{query_id}", user=user).get_json()
            if body["status"] in {"succeeded", "failed", "cancelled"}:
                self.context.tasks.drain(10)
                return body
            time.sleep(0.02)
        raise AssertionError(f"query {query_id} did not finish: {body}")
