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
from tests.scripted_analyst import Analyst
from tests.scripted_llm import install_scripted_llm

SALES = b"region,revenue\nNorth,120\nSouth,80\nNorth,130\n"
SERVER_KEY = "sk-server-key-for-tests-0123456789"


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
    settings = Settings.from_env({}, **{
        "data_dir": str(tmp_path / "data"), "llm_default_model": "scripted/model",
        "llm_default_api_keys": f"scripted={SERVER_KEY}", "query_wait_seconds": 30,
        "answer_cache_ttl_seconds": answer_cache_ttl, **extra_settings})
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
