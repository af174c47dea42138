"""The charts API through the emulator's gateway: list, read, sign, serve and delete, each tenant its own.

Charts are saved straight through the chart store (a real render each) on local files + SQLite, with a fake
clock so signed URLs expire without waiting; one test makes its chart the way users do, with a question.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse

import pytest
from werkzeug.test import Client

from common import bootstrap
from common.auth import Tenant
from common.charts import build_chart_store
from common.charts.spec import bind_and_validate
from common.clock import FakeClock
from common.config import Settings
from common.gateway import route_table
from local_emulator.server import GatewayDispatcher, local_context
from tests.integration.conftest import assert_error

ALICE = Tenant("alice")
DEFAULT_TTL = 3600
COLUMNS = [{"name": "region", "dtype": "str"}, {"name": "sales", "dtype": "int"}]
ROWS = [{"region": "north", "sales": 3}, {"region": "south", "sales": 5}]


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def context(function_apps, tmp_path, clock):
    settings = Settings.from_env({}, data_dir=str(tmp_path / "data"), chart_url_ttl_seconds=DEFAULT_TTL)
    context = local_context(settings, function_apps, clock=clock)
    bootstrap.use(context)
    yield context
    context.close()
    bootstrap.use(None)


@pytest.fixture
def api(context, function_apps):
    client = Client(GatewayDispatcher(function_apps, route_table()))

    def call(method: str, path: str, user: str | None = "alice", **kwargs):
        headers = {"X-User-Id": user} if user else {}
        return client.open(path, method=method, headers=headers, **kwargs)

    return call


@pytest.fixture
def store(context):
    return build_chart_store(context.settings, context.blobs, context.metadata, context.clock)


@pytest.fixture(scope="module")
def spec():
    return bind_and_validate({"mark": "bar", "encoding": {"x": {"field": "region", "type": "nominal"},
                                                          "y": {"field": "sales", "type": "quantitative"}}},
                             COLUMNS, ROWS, max_rows=100)


def save(store, spec, *, tenant=ALICE, session_id="s1", domain="sales"):
    return store.save(tenant, spec=spec, kind="bar", query_id="q1", session_id=session_id, domain=domain,
                      title="Sales by region")


def stored(store, tenant=ALICE):
    """Everything a request could have changed: the tenant's chart records and every blob key."""
    return [chart.chart_id for chart in store.list(tenant)], sorted(info.key for info in store.blobs.list(""))


def test_the_list_is_newest_first_with_sizes_and_filters(api, store, spec, clock):
    first = save(store, spec)
    clock.advance(1)
    second = save(store, spec, session_id="s2", domain="ops")
    items = api("GET", "/api/v1/charts").get_json()["items"]
    assert [item["chart_id"] for item in items] == [second.chart_id, first.chart_id]
    assert set(items[0]) == {"chart_id", "kind", "title", "query_id", "session_id", "domain", "row_count",
                             "size_bytes", "created_at"}
    assert items[1]["kind"] == "bar" and items[1]["row_count"] == 2 and items[1]["session_id"] == "s1"
    blob_sizes = sum(info.size for info in store.blobs.list(f"tenants/alice/charts/{first.chart_id}/"))
    assert items[1]["size_bytes"] == blob_sizes > 0
    assert items[1]["created_at"] == first.created_at.isoformat()
    only = api("GET", "/api/v1/charts?session_id=s1").get_json()["items"]
    assert [item["chart_id"] for item in only] == [first.chart_id]
    only = api("GET", "/api/v1/charts?domain=Ops").get_json()["items"]  # domains are normalised
    assert [item["chart_id"] for item in only] == [second.chart_id]
    assert [item["chart_id"] for item in api("GET", "/api/v1/charts?limit=1").get_json()["items"]] == [
        second.chart_id]
    assert api("GET", "/api/v1/charts", user="bob").get_json()["items"] == []


def test_get_returns_the_metadata_and_the_bound_spec(api, store, spec):
    chart = save(store, spec)
    body = api("GET", f"/api/v1/charts/{chart.chart_id}").get_json()
    assert body["chart_id"] == chart.chart_id and body["title"] == "Sales by region"
    assert body["spec"] == spec and body["spec"]["data"]["values"][0] == {"region": "north", "sales": 3}


def test_a_signed_url_serves_each_format_to_anyone_until_it_expires(api, store, spec, clock):
    chart = save(store, spec)
    body = api("GET", f"/api/v1/charts/{chart.chart_id}/url").get_json()
    assert body["format"] == "html" and body["ttl_seconds"] == DEFAULT_TTL  # CHART_URL_TTL_SECONDS
    assert body["expires_at"] == (clock.now() + dt.timedelta(seconds=DEFAULT_TTL)).isoformat()
    page = api("GET", body["url"], user=None)  # the signature is the permission
    assert page.status_code == 200 and page.mimetype == "text/html" and b"<html" in page.get_data()[:500].lower()
    png = api("GET", api("GET", f"/api/v1/charts/{chart.chart_id}/url?format=png").get_json()["url"], user=None)
    assert png.mimetype == "image/png" and png.get_data()[:4] == b"\x89PNG"
    svg = api("GET", api("GET", f"/api/v1/charts/{chart.chart_id}/url?format=svg").get_json()["url"], user=None)
    assert svg.mimetype == "image/svg+xml" and svg.get_data().startswith(b"<svg")
    short = api("GET", f"/api/v1/charts/{chart.chart_id}/url?ttl=60").get_json()
    assert short["ttl_seconds"] == 60
    clock.advance(60)
    assert_error(api("GET", short["url"], user=None), 403, "URL_EXPIRED")
    assert api("GET", body["url"], user=None).status_code == 200
    clock.advance(DEFAULT_TTL)
    assert_error(api("GET", body["url"], user=None), 403, "URL_EXPIRED")


def test_a_tampered_url_is_refused(api, store, spec):
    chart = save(store, spec)
    bobs = save(store, spec, tenant=Tenant("bob"))
    url = api("GET", f"/api/v1/charts/{chart.chart_id}/url").get_json()["url"]
    path, _, query = url.partition("?")
    args = dict(urllib.parse.parse_qsl(query))
    later = {**args, "expires": str(int(args["expires"]) + 3600)}
    assert_error(api("GET", f"{path}?{urllib.parse.urlencode(later)}", user=None), 403, "BAD_SIGNATURE")
    other = path.replace(chart.chart_id, bobs.chart_id)
    assert_error(api("GET", f"{other}?{query}", user=None), 403, "BAD_SIGNATURE")
    png = path.replace("content.html", "content.png")
    assert_error(api("GET", f"{png}?{query}", user=None), 403, "BAD_SIGNATURE")
    assert_error(api("GET", path, user=None), 403, "BAD_SIGNATURE")


def test_delete_removes_the_record_the_blobs_and_the_urls(api, store, spec):
    chart, kept = save(store, spec), save(store, spec, session_id="s2")
    url = api("GET", f"/api/v1/charts/{chart.chart_id}/url").get_json()["url"]
    response = api("DELETE", f"/api/v1/charts/{chart.chart_id}")
    assert response.status_code == 200 and response.get_json() == {"deleted": True, "chart_id": chart.chart_id}
    assert_error(api("GET", f"/api/v1/charts/{chart.chart_id}"), 404, "CHART_NOT_FOUND")
    assert_error(api("GET", url, user=None), 404)
    records, blobs = stored(store)
    assert records == [kept.chart_id] and not any(chart.chart_id in key for key in blobs)
    assert_error(api("DELETE", f"/api/v1/charts/{chart.chart_id}"), 404, "CHART_NOT_FOUND")


def test_another_tenants_chart_is_404_on_every_route(api, store, spec):
    chart = save(store, spec)
    before = stored(store)
    for method, path in [("GET", f"/api/v1/charts/{chart.chart_id}"),
                         ("GET", f"/api/v1/charts/{chart.chart_id}/url"),
                         ("GET", f"/api/v1/charts/{chart.chart_id}/url?format=png&ttl=60"),
                         ("DELETE", f"/api/v1/charts/{chart.chart_id}")]:
        assert_error(api(method, path, user="bob"), 404, "CHART_NOT_FOUND")
    assert api("GET", "/api/v1/charts?session_id=s1", user="bob").get_json()["items"] == []
    assert stored(store) == before


@pytest.mark.parametrize("method,path,status", [
    ("GET", "/api/v1/charts?limit=0", 400),
    ("GET", "/api/v1/charts?limit=501", 400),
    ("GET", "/api/v1/charts?limit=ten", 400),
    ("GET", "/api/v1/charts?domain=..", 400),
    ("GET", "/api/v1/charts?domain=", 400),
    ("GET", "/api/v1/charts?session_id=", 400),
    ("GET", "/api/v1/charts?session_id=" + "s" * 513, 400),
    ("GET", "/api/v1/charts/{id}/url?format=gif", 400),
    ("GET", "/api/v1/charts/{id}/url?format=", 400),
    ("GET", "/api/v1/charts/{id}/url?ttl=59", 400),
    ("GET", "/api/v1/charts/{id}/url?ttl=604801", 400),
    ("GET", "/api/v1/charts/{id}/url?ttl=1.5", 400),
    ("GET", "/api/v1/charts/{id}/url?ttl=week", 400),
    ("GET", "/api/v1/charts/not%20an%20id", 404),
    ("GET", "/api/v1/charts/not-a-chart-0123/url", 404),
    ("DELETE", "/api/v1/charts/x", 404),
    ("DELETE", "/api/v1/charts", 405),
    ("POST", "/api/v1/charts/{id}", 405),
    ("GET", "/api/v1/charts/{id}/content.gif", 404),
])
def test_bad_input_is_a_4xx_in_the_one_shape_and_changes_nothing(api, store, spec, method, path, status):
    chart = save(store, spec)
    before = stored(store)
    assert_error(api(method, path.replace("{id}", chart.chart_id)), status)
    assert stored(store) == before


@pytest.mark.parametrize("method,path", [("GET", "/api/v1/charts"), ("GET", "/api/v1/charts/{id}"),
                                         ("GET", "/api/v1/charts/{id}/url"), ("DELETE", "/api/v1/charts/{id}")])
def test_every_route_but_the_signed_content_needs_an_identity(api, store, spec, method, path):
    chart = save(store, spec)
    assert_error(api(method, path.replace("{id}", chart.chart_id), user=None), 401, "UNAUTHENTICATED")
    assert stored(store)[0] == [chart.chart_id]


def test_a_questions_chart_is_listed_read_and_deleted(pipeline):
    pipeline.upload("sales")
    submitted = pipeline.ask("Compare revenue by region")
    answer = pipeline.wait(submitted["query_id"])["answer"]
    items = pipeline.call("GET", f"/api/v1/charts?session_id={submitted['session_id']}").get_json()["items"]
    assert [item["chart_id"] for item in items] == [answer["chart"]["chart_id"]]
    assert items[0]["domain"] == "sales" and items[0]["query_id"] == submitted["query_id"]
    chart = pipeline.call("GET", f"/api/v1/charts/{items[0]['chart_id']}").get_json()
    assert chart["spec"] == answer["chart"]["spec"]
    assert pipeline.call("GET", f"/api/v1/charts/{items[0]['chart_id']}", user="bob").status_code == 404
    assert pipeline.call("DELETE", f"/api/v1/charts/{items[0]['chart_id']}").status_code == 200
    assert pipeline.call("GET", "/api/v1/charts?domain=sales").get_json()["items"] == []
