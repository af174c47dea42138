"""The chart store on real backends (local files + SQLite): a chart is whole or absent, and only its tenant's.

Each save renders for real (HTML and PNG, tens of milliseconds), so the tests save few charts.
"""

from __future__ import annotations

import urllib.parse

import pytest

from common import errors
from common.auth import Tenant
from common.charts import build_chart_store
from common.charts.spec import bind_and_validate
from common.charts.store import ChartStore
from common.clock import FakeClock
from common.config import Settings
from common.metadata.sql import SqlMetadataStore
from common.metadata.sql_engine import create_engine_for
from common.signing import HmacUrlSigner
from common.storage.local import LocalBlobStore
from tests.doubles import MetadataThatFailsOnPut

ALICE, BOB = Tenant("alice"), Tenant("bob@example.com")  # bob's namespace is hashed
COLUMNS = [{"name": "region", "dtype": "str"}, {"name": "sales", "dtype": "int"}]
ROWS = [{"region": "north", "sales": 3}, {"region": "south", "sales": 5}]


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def store(tmp_path, clock):
    metadata = SqlMetadataStore(create_engine_for("", data_dir=str(tmp_path)), clock=clock)
    blobs = LocalBlobStore(str(tmp_path / "blobs"))
    return ChartStore(blobs, metadata, clock, HmacUrlSigner([b"k" * 32]), default_ttl=3600)


@pytest.fixture(scope="module")
def spec():
    return bind_and_validate({"mark": "bar", "encoding": {"x": {"field": "REGION", "type": "nominal"},
                                                          "y": {"field": "sales", "type": "quantitative"}}},
                             COLUMNS, ROWS, max_rows=100)


def save(store, tenant, spec, *, session_id="s1", domain="sales", **extra):
    return store.save(tenant, spec=spec, kind="bar", query_id="q1", session_id=session_id, domain=domain,
                      title="Sales by region", **extra)


def blob_keys(store):
    return [info.key for info in store.blobs.list("")]


def fetch(store, url):
    path, _, query = url.partition("?")
    return store.open_signed(path, dict(urllib.parse.parse_qsl(query)))


def test_save_get_list_delete_round_trip(store, spec, clock):
    first = save(store, ALICE, spec)
    clock.advance(1)
    second = save(store, ALICE, spec, session_id="s2", domain="ops")
    assert store.get(ALICE, first.chart_id) == first
    assert (first.kind, first.title, first.row_count, first.session_id) == ("bar", "Sales by region", 2, "s1")
    assert store.spec(ALICE, first.chart_id) == spec
    assert [c.chart_id for c in store.list(ALICE)] == [second.chart_id, first.chart_id]
    assert [c.chart_id for c in store.list(ALICE, session_id="s1")] == [first.chart_id]
    assert [c.chart_id for c in store.list(ALICE, domain="ops")] == [second.chart_id]
    assert sorted(blob_keys(store)) == sorted(f"tenants/alice/charts/{chart.chart_id}/{name}"
                                              for chart in (first, second)
                                              for name in ("chart.html", "chart.png", "spec.json"))
    url = store.url(ALICE, first.chart_id)
    store.delete(ALICE, first.chart_id)
    with pytest.raises(errors.NotFound):
        store.get(ALICE, first.chart_id)
    with pytest.raises(errors.NotFound):
        fetch(store, url)
    assert [c.chart_id for c in store.list(ALICE)] == [second.chart_id]
    assert not any(first.chart_id in key for key in blob_keys(store))


def test_signed_urls_serve_each_format_until_they_expire(store, spec, clock):
    chart = save(store, ALICE, spec)
    page = fetch(store, store.url(ALICE, chart.chart_id, "html"))
    assert page.content_type.startswith("text/html") and page.body.startswith(b"<!DOCTYPE html>")
    assert page.headers["Content-Disposition"] == "inline"
    assert fetch(store, store.url(ALICE, chart.chart_id, "png")).body[:8] == b"\x89PNG\r\n\x1a\n"
    svg = fetch(store, store.url(ALICE, chart.chart_id, "svg"))
    assert svg.content_type == "image/svg+xml" and svg.body.startswith(b"<svg")
    assert "chart.svg" not in " ".join(blob_keys(store))  # rendered on demand, not stored
    url = store.url(ALICE, chart.chart_id, "html", ttl=60)
    clock.advance(61)
    with pytest.raises(errors.Forbidden):
        fetch(store, url)


def test_another_tenant_can_neither_see_nor_sign_nor_replay(store, spec):
    chart = save(store, ALICE, spec)
    with pytest.raises(errors.NotFound):
        store.get(BOB, chart.chart_id)
    with pytest.raises(errors.NotFound):
        store.url(BOB, chart.chart_id)
    with pytest.raises(errors.NotFound):
        store.delete(BOB, chart.chart_id)
    assert store.list(BOB) == []
    # Bob's own URL for a chart id of his cannot be pointed at Alice's namespace.
    bobs = save(store, BOB, spec)
    path, _, query = store.url(BOB, bobs.chart_id).partition("?")
    args = dict(urllib.parse.parse_qsl(query))
    with pytest.raises(errors.Forbidden):
        store.open_signed(path.replace(bobs.chart_id, chart.chart_id), args)
    with pytest.raises(errors.Forbidden):
        store.open_signed(path, {**args, "ns": ALICE.namespace})
    assert store.get(ALICE, chart.chart_id) == chart


def test_a_failed_record_write_leaves_no_blobs(store, spec):
    real = store.metadata
    store.metadata = MetadataThatFailsOnPut(real)
    with pytest.raises(errors.ServiceUnavailable):
        save(store, ALICE, spec)
    store.metadata = real
    assert blob_keys(store) == []
    assert store.list(ALICE) == []


def test_a_spec_that_cannot_render_stores_nothing(store):
    broken = {"mark": "bar", "data": {"values": []}, "transform": [{"calculate": "datum.a +* 2", "as": "b"}]}
    with pytest.raises(errors.BadRequest):
        save(store, ALICE, broken)
    assert blob_keys(store) == [] and store.list(ALICE) == []


def test_saving_again_with_the_same_chart_id_returns_the_first_chart(store, spec):
    first = save(store, ALICE, spec, chart_id="query-q1-chart")
    again = save(store, ALICE, spec, chart_id="query-q1-chart", session_id="other")
    assert again == first and len(store.list(ALICE)) == 1


@pytest.mark.parametrize("fmt,ttl", [("pdf", None), ("html", 0), ("html", 8 * 24 * 3600)])
def test_bad_url_requests_are_refused_before_any_lookup(store, fmt, ttl):
    with pytest.raises(errors.BadRequest):
        store.url(ALICE, "0000000000000-deadbeef", fmt, ttl)


def test_a_gcs_signer_is_used_when_given(tmp_path, spec, clock):
    calls = []

    def gcs_signer(key, *, expires_at, content_type):
        calls.append((key, expires_at, content_type))
        return f"https://storage.example/{key}?X-Goog-Signature=test"

    local = ChartStore(LocalBlobStore(str(tmp_path / "blobs")),
                       SqlMetadataStore(create_engine_for("", data_dir=str(tmp_path)), clock=clock), clock, None,
                       gcs_signer=gcs_signer, default_ttl=600)
    chart = save(local, ALICE, spec)
    assert local.url(ALICE, chart.chart_id, "svg").startswith("https://storage.example/tenants/alice/charts/")
    key, expires_at, content_type = calls[0]
    assert key.endswith("/chart.svg") and local.blobs.exists(key)  # an object to sign, rendered once
    assert content_type == "image/svg+xml"
    assert expires_at.timestamp() == clock.now().timestamp() + 600


def test_the_store_built_from_settings_signs_local_urls_with_the_configured_secret(tmp_path, spec, clock):
    settings = Settings.from_env({}, data_dir=str(tmp_path), url_signing_secret="x" * 40, chart_url_ttl_seconds=120)
    built = build_chart_store(settings, LocalBlobStore(str(tmp_path / "blobs")),
                              SqlMetadataStore(create_engine_for("", data_dir=str(tmp_path)), clock=clock), clock)
    chart = save(built, ALICE, spec)
    url = built.url(ALICE, chart.chart_id, "png")
    assert url.startswith(f"/api/v1/charts/{chart.chart_id}/content.png?")
    assert f"expires={int(clock.now().timestamp()) + 120}" in url
    HmacUrlSigner.from_setting("x" * 40).verify(url.partition("?")[0],
                                                dict(urllib.parse.parse_qsl(url.partition("?")[2])),
                                                now=clock.now().timestamp())
