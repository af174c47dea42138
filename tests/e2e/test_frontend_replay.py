"""The original React frontend's whole session, replayed over real HTTP against a fresh emulator (issue 10).

The calls are the ones docs/FRONTEND_CONTRACT.md §10 lists, in its order, sent as the frontend sends them: no
credential but ``userId`` in the body or query, an ``Origin``, a CORS preflight before each JSON, PUT or DELETE
request, and only the fields it reads checked. The only stand-in is the model: an OpenAI-compatible server on
loopback (``LLM_API_BASE``), the way a user points the product at their own endpoint. Key settings, upload,
listing and preview, the KPI card's signed link, metadata, suggestions, a question with its chart and text, a
follow-up, another key, Postgres (the local server, without TLS, as the page sends it: no sslmode) and the
deletes each have to give the frontend what it reads.
"""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest

from tests.benchmarks.sales_model import SalesModel, write_sales_csv
from tests.conftest import require_service
from tests.model_server import ModelServer, Reply

APP_ORIGIN = "http://localhost:5173"
USER = "Xy12Firebase0uid0of028chars0"
KEY, NEW_KEY = "sk-replay-key-0123456789abcdef", "sk-replay-key-rotated-0123456789"
SESSION = "1732100000000"


class ReplayModel(SalesModel):
    """The sales answers, and four suggested questions when the suggester asks."""

    def __call__(self, agent: str, messages: list[dict[str, Any]]) -> Reply:
        if agent == "suggest":
            return Reply(json.dumps({"suggestions": ["Revenue by region?", "Top product?", "Monthly trend?",
                                                     "Which channel grows?"]}))
        return super().__call__(agent, messages)


class Browser:
    """Calls as the frontend's fetch does: from its origin, preflighted, with no credential of its own."""

    def __init__(self, base: str):
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def send(self, method: str, path: str, body: Any = None, *, form: bytes | None = None,
             content_type: str | None = None) -> tuple[int, dict[str, str], Any]:
        url = path if path.startswith("http") else self.base + path
        if method != "GET" or body is not None:
            self._preflight(url, method)
        data, headers = None, {"Origin": APP_ORIGIN}
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        elif form is not None:
            data, headers["Content-Type"] = form, content_type
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with self.opener.open(request, timeout=120) as response:
                status, head, raw = response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            status, head, raw = error.code, dict(error.headers), error.read()
        assert head.get("Access-Control-Allow-Origin") in (APP_ORIGIN, "*"), (method, path, head)
        kind = head.get("Content-Type", "")
        return status, head, json.loads(raw) if kind.startswith("application/json") else raw

    def _preflight(self, url: str, method: str) -> None:
        request = urllib.request.Request(url, method="OPTIONS", headers={
            "Origin": APP_ORIGIN, "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "content-type"})
        with self.opener.open(request, timeout=30) as response:
            assert response.status in (200, 204)
            allowed = response.headers.get("Access-Control-Allow-Methods", "")
            assert method in allowed and "content-type" in response.headers["Access-Control-Allow-Headers"].lower()


def _multipart(fields: dict[str, str], file_field: str, name: str, content: bytes) -> tuple[bytes, str]:
    boundary = f"----replay{secrets.token_hex(8)}"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
             for key, value in fields.items()]
    parts += [f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{name}"\r\n'
              "Content-Type: text/csv\r\n\r\n".encode(), content, f"\r\n--{boundary}--\r\n".encode()]
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


@pytest.fixture(scope="module")
def frontend(tmp_path_factory):
    from evaluation.client import Emulator

    workdir = tmp_path_factory.mktemp("replay")
    write_sales_csv(workdir / "sales.csv", rows=120)
    with ModelServer(ReplayModel(), accepted_keys={KEY, NEW_KEY}) as model:
        # DEV_USER: the signed-in user of the stubbed Firebase sign-in, for the calls that name no userId
        # (/pg/test); in the cloud the frontend sends that user's ID token instead.
        settings = {"LLM_API_BASE": model.url, "NO_PROXY": "127.0.0.1,localhost", "DEV_USER": USER}
        with Emulator(settings=settings) as emulator:
            yield Browser(emulator.url), (workdir / "sales.csv").read_bytes()


def test_the_original_frontends_whole_session(frontend):
    browser, sales = frontend
    q = f"userId={USER}"

    # 1-5: the configuration page: providers, no keys yet, a key checked and saved, a model chosen.
    status, _, body = browser.send("GET", "/litellm/providers")
    assert status == 200 and "openai" in body["providers"]
    status, _, body = browser.send("GET", f"/get-provider-keys?{q}")
    assert status == 200 and body["items"] == [] and body["count"] == 0
    status, _, body = browser.send("POST", "/validate-key", {"provider": "openai", "apiKey": "sk-wrong-key-000000",
                                                             "userId": USER})
    assert body["valid"] is False and body["error"]  # checked, not assumed: a wrong key is said to be wrong
    status, _, body = browser.send("POST", "/validate-key", {"provider": "openai", "apiKey": KEY, "userId": USER})
    assert body["valid"] is True and body["token"] and KEY not in json.dumps(body)
    assert body["models"] == ["openai/llama3.1:8b", "openai/meta-llama/Llama-3.1-8B-Instruct"]  # the endpoint's
    model = body["models"][0]
    status, _, body = browser.send("POST", "/set-active-config", {"userId": USER, "provider": "openai",
                                                                  "selectedModel": model})
    assert body["saved"] is True
    _, _, body = browser.send("GET", f"/get-provider-keys?{q}")
    assert body["items"][0]["is_active"] is True and body["items"][0]["selectedModel"] == model

    # 6-11: the datasets page: upload (twice, as the page does), list, the KPI card's link, preview, metadata.
    status, _, body = browser.send("GET", f"/datasets?domain=Campaign&{q}")
    assert status == 200 and body["items"] == []
    form, kind = _multipart({"userId": USER}, "files", "sales.csv", sales)
    assert browser.send("POST", f"/upload_datasets/Campaign?{q}", form=form, content_type=kind)[0] in (200, 201)
    form, kind = _multipart({"userId": USER, "domain": "Campaign"}, "file", "sales.csv", sales)
    assert browser.send("POST", f"/datasets/upload?{q}", form=form, content_type=kind)[0] in (200, 201)
    _, _, body = browser.send("GET", f"/datasets?domain=Campaign&{q}")
    [item] = body["datasets"]
    assert item["filename"] == "sales.csv" and item["size"] == len(sales) and item["updated"]
    assert item["signed_url"].startswith(browser.base + "/files/datasets/")  # absolute: fetched from the app
    status, _, csv_text = browser.send("GET", item["signed_url"])
    assert status == 200 and csv_text.decode().splitlines()[0].startswith("order_date,region")
    status, _, body = browser.send("GET", f"/datasets/Campaign/sales.csv?{q}")
    assert status == 200 and body["records"][0]["region"]
    columns = [{"name": "region", "type": "string", "description": ""},
               {"name": "revenue", "type": "float", "description": "IDR"}]
    status, _, _ = browser.send("PUT", f"/datasets/Campaign/sales.csv/metadata?{q}",
                                {"description": "Q3 sales", "columns": columns, "userId": USER})
    assert 200 <= status < 300

    # 13-16: a new chat: suggestions, the question, its chart, a follow-up in the same session.
    _, _, body = browser.send("POST", "/suggest", {"domain": "Campaign", "dataset": ["sales.csv"],
                                                   "provider": "openai", "model": model, "userId": USER})
    assert len(body["suggestions"]) == 4
    ask = {"domain": "Campaign", "prompt": "Compare revenue by region", "session_id": SESSION,
           "includeInsight": True, "provider": "openai", "model": model, "userId": USER}
    status, _, body = browser.send("POST", "/query", ask)
    assert status == 200, body
    assert body["session_id"] == SESSION and body["response"].startswith("<") and body["plan_explainer"]
    assert body["diagram_kind"] == "charts" and body["chart_url"] and isinstance(body["execution_time"], float)
    chart_url = urllib.parse.urljoin(browser.base, body["chart_url"])
    status, head, page = browser.send("GET", chart_url)
    assert status == 200 and head["Content-Type"].startswith("text/html") and b"<!DOCTYPE html>" in page
    status, _, body = browser.send("POST", "/query", {**ask, "prompt": "now only North", "dataset": ["sales.csv"]})
    assert status == 200 and body["session_id"] == SESSION
    status, _, body = browser.send("POST", "/query", {**ask, "session_id": "1732100000001", "includeInsight": False,
                                                      "dataset": ["sales.csv"]})
    assert status == 200 and body["chart_url"]

    # 22: another key, then none.
    _, _, body = browser.send("PUT", "/update-provider-key", {"userId": USER, "provider": "openai",
                                                              "apiKey": NEW_KEY})
    assert body["updated"] is True
    _, _, body = browser.send("DELETE", "/delete-provider-key", {"userId": USER, "provider": "openai"})
    assert body["deleted"] is True

    # 23: Postgres, the local server without TLS, as the page sends it (no sslmode).
    server = urllib.parse.urlsplit(require_service("TEST_POSTGRES_URL", "PostgreSQL").replace("+pg8000", ""))
    connection = {"host": server.hostname, "port": str(server.port or 5432), "dbname": server.path.lstrip("/"),
                  "user": server.username, "password": server.password or ""}
    _, _, body = browser.send("GET", f"/pg/get?{q}")
    assert body["items"] == []
    _, _, body = browser.send("POST", "/pg/test", connection)
    assert body["ok"] is True, body
    _, _, body = browser.send("POST", "/pg/save", {**connection, "userId": USER})
    assert body["saved"] is True
    _, _, body = browser.send("GET", f"/pg/get?{q}")
    assert body["items"][0]["host"] == server.hostname and "password" not in body["items"][0]

    # 24: the deletes.
    _, _, body = browser.send("DELETE", f"/datasets/Campaign/sales.csv?{q}")
    assert body["deleted"] is True
    status, _, _ = browser.send("DELETE", f"/datasets/Campaign/all?{q}")
    assert 200 <= status < 300
