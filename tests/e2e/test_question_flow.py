"""The whole flow over real HTTP, as a user goes: upload, ask, follow the events, read the answer, open the
chart, ask a follow-up, read the history, export it, delete it. The emulator's own gateway and dispatcher
serve it in this process, so the scripted models (the one stand-in) can answer."""

from __future__ import annotations

import json
import threading
import urllib.request
import uuid

import pytest

from common import bootstrap
from common.config import Settings
from local_emulator import http_server
from local_emulator.server import build_gateway, local_context
from tests.integration.pipeline_fixtures import cloud_settings, drop_cloud_collections
from tests.scripted_analyst import Analyst
from tests.scripted_llm import install_scripted_llm

SALES = b"region;month;revenue\nNorth;2024-01;120\nSouth;2024-01;80\nNorth;2024-02;130\nSouth;2024-02;90\n"


@pytest.fixture(scope="module", params=["local", "cloud"])
def server(request, tmp_path_factory):
    """The emulator on local backends, then on the cloud ones (GCS, Firestore, Redis emulators)."""
    prefix = f"t{uuid.uuid4().hex[:12]}"
    backends = cloud_settings(prefix) if request.param == "cloud" else {}
    script = install_scripted_llm()
    script.reset()
    analyst = Analyst()
    script.respond("scripted/model", analyst)
    settings = Settings.from_env({}, data_dir=str(tmp_path_factory.mktemp("e2e")), llm_default_model="scripted/model",
                                 llm_default_api_keys="scripted=sk-e2e-server-key-0123456789", **backends)
    gateway = build_gateway()
    context = local_context(settings, gateway.apps)
    bootstrap.use(context)
    httpd = http_server.make_server(gateway, "127.0.0.1", 0)  # the emulator's own server
    httpd.prepare()
    thread = threading.Thread(target=httpd.serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.bind_addr[1]}", analyst
    httpd.stop()
    context.close()
    bootstrap.use(None)
    if backends:
        drop_cloud_collections(prefix)


def call(base: str, method: str, path: str, *, body: bytes | None = None, content_type: str | None = None,
         user: str | None = "alice") -> tuple[int, str, bytes]:
    request = urllib.request.Request(base + path, data=body, method=method)
    if user:
        request.add_header("X-User-Id", user)
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers.get_content_type(), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get_content_type(), error.read()


def upload(base: str, domain: str, name: str, content: bytes) -> None:
    boundary = uuid.uuid4().hex
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="domain"\r\n\r\n{domain}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n\r\n').encode()
    body += content + f"\r\n--{boundary}--\r\n".encode()
    status, _, raw = call(base, "POST", "/api/v1/datasets", body=body,
                          content_type=f"multipart/form-data; boundary={boundary}")
    assert status == 201, raw


def ask(base: str, prompt: str, **fields) -> dict:
    body = json.dumps({"domain": "sales", "prompt": prompt, **fields}).encode()
    status, _, raw = call(base, "POST", "/api/v1/queries", body=body, content_type="application/json")
    assert status == 202, raw
    submitted = json.loads(raw)
    status, kind, stream = call(base, "GET", submitted["events_url"])  # blocks until the answer is ready
    assert status == 200 and kind == "text/event-stream"
    end = next(block for block in stream.decode().split("\n\n") if block.startswith("event: end\n"))
    final = json.loads(next(line for line in end.splitlines() if line.startswith("data: "))[len("data: "):])
    assert final["status"] == "succeeded", final
    return final


def test_upload_ask_chart_follow_up_history_export(server):
    base, analyst = server
    upload(base, "Sales", "sales.csv", SALES)

    first = ask(base, "Compare revenue by region")
    answer = first["answer"]
    assert answer["table"]["rows"] == [{"region": "North", "revenue": 250}, {"region": "South", "revenue": 170}]
    status, kind, page = call(base, "GET", answer["chart"]["html_url"].replace(base, ""), user=None)
    assert status == 200 and kind == "text/html" and b"vega" in page.lower()

    # The SQL behind the answer can be re-run by the user.
    status, _, raw = call(base, "POST", "/api/v1/domains/sales/sql",
                          body=json.dumps({"sql": answer["sql"]}).encode(), content_type="application/json")
    assert status == 200 and json.loads(raw)["rows"] == answer["table"]["rows"]

    analyst.default_sql = "SELECT month, SUM(revenue) AS revenue FROM sales GROUP BY month ORDER BY month"
    analyst.spec = {**analyst.spec, "mark": "line",
                    "encoding": {"x": {"field": "month", "type": "ordinal"},
                                 "y": {"field": "revenue", "type": "quantitative"}}}
    follow_up = ask(base, "now by month", session_id=first["session_id"])
    assert follow_up["answer"]["chart"]["kind"] == "line"
    assert [row["month"] for row in follow_up["answer"]["table"]["rows"]] == ["2024-01", "2024-02"]

    status, _, raw = call(base, "GET", f"/api/v1/sessions/{first['session_id']}")
    assert [turn["role"] for turn in json.loads(raw)["history"]] == ["user", "assistant"] * 2
    status, kind, pdf = call(base, "POST", f"/api/v1/sessions/{first['session_id']}/export")
    assert status == 200 and kind == "application/pdf" and pdf.startswith(b"%PDF")

    assert call(base, "GET", f"/api/v1/sessions/{first['session_id']}", user="bob")[0] == 404
    assert call(base, "DELETE", f"/api/v1/sessions/{first['session_id']}")[0] == 200
    assert call(base, "GET", f"/api/v1/sessions/{first['session_id']}")[0] == 404


def test_the_original_frontends_question(server):
    base, _ = server
    upload(base, "Campaign", "sales.csv", SALES)
    body = json.dumps({"domain": "Campaign", "prompt": "Compare revenue by region", "session_id": "1732100000001",
                       "includeInsight": True, "provider": "scripted", "model": "scripted/model",
                       "userId": "alice"}).encode()
    status, _, raw = call(base, "POST", "/query", body=body, content_type="application/json")
    assert status == 200, raw
    reply = json.loads(raw)
    assert reply["response"].startswith("<p>") and reply["chart_url"].startswith("/charts/")
    status, kind, _ = call(base, "GET", reply["chart_url"], user=None)
    assert status == 200 and kind == "text/html"
