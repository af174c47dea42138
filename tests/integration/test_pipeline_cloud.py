"""Questions on the cloud configuration (GCS, Firestore, Redis), run locally against the emulators: the
emulator's anonymous credentials cannot sign a V4 URL, so chart links come from the charts function's own
HMAC-signed route instead, and nothing about signing fails an answer."""

from __future__ import annotations

import pytest

from tests.integration.pipeline_fixtures import cloud_pipeline  # noqa: F401

FRONTEND_QUERY = {"domain": "Campaign", "prompt": "Compare revenue by region", "session_id": "1732100000000",
                  "includeInsight": True, "provider": "SCRIPTED", "model": "scripted/model", "userId": "alice"}


@pytest.fixture
def sales(cloud_pipeline):  # noqa: F811
    cloud_pipeline.upload("sales")
    return cloud_pipeline


def test_a_question_is_answered_with_its_chart_on_gcs_firestore_and_redis(sales, analyst, caplog):
    body = sales.wait(sales.ask("Compare revenue by region")["query_id"])
    assert body["status"] == "succeeded", body
    answer = body["answer"]
    assert answer["table"]["rows"] == [{"region": "North", "revenue": 250}, {"region": "South", "revenue": 80}]
    assert sorted(analyst.agents_called()) == ["analyst", "planner", "visualizer"]
    assert answer["usage"]["calls"] == 3 and body["stages"]["compile"]["state"] == "done"
    chart = answer["chart"]
    assert chart["kind"] == "bar" and chart["spec"]["data"]["values"][0]["region"] == "North"
    assert chart["html_url"].startswith(f"/api/v1/charts/{chart['chart_id']}/content.html?")  # the API's route
    page = sales.call("GET", chart["html_url"], user="nobody")  # the signature is the permission
    assert page.status_code == 200 and b"<html" in page.get_data()[:500].lower()
    assert sales.call("GET", chart["png_url"], user="nobody").get_data()[:4] == b"\x89PNG"
    url = sales.call("GET", f"/api/v1/charts/{chart['chart_id']}/url?format=svg").get_json()["url"]
    assert b"<svg" in sales.call("GET", url, user="nobody").get_data()[:500]

    again = sales.wait(sales.ask("Compare revenue by region")["query_id"])
    assert again["status"] == "succeeded" and again["answer"]["chart"]["html_url"]
    warnings = [record for record in caplog.records if "cannot sign URLs" in record.getMessage()]
    assert len(warnings) == 1  # once per instance, not once per URL


def test_the_original_query_answers_with_its_chart_on_gcs_firestore_and_redis(cloud_pipeline, analyst):  # noqa: F811
    cloud_pipeline.upload("campaign")
    response = cloud_pipeline.call("POST", "/query", json=FRONTEND_QUERY)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["response"].startswith("<p><strong>Bottom line:</strong>") and body["diagram_kind"] == "charts"
    chart = cloud_pipeline.call("GET", body["chart_url"], user="")
    assert chart.status_code == 200 and chart.mimetype == "text/html"
    assert sorted(analyst.agents_called()) == ["analyst", "planner", "visualizer"]


def test_with_no_way_to_sign_a_chart_the_answer_comes_without_its_links(sales, analyst):
    sales.context.charts.signer = None  # no URL_SIGNING_SECRET, and credentials that cannot sign
    body = sales.wait(sales.ask("Compare revenue by region")["query_id"])
    assert body["status"] == "succeeded", body
    chart = body["answer"]["chart"]
    assert chart["html_url"] is None and chart["png_url"] is None and chart["spec"]["data"]["values"]


def test_credentials_that_cannot_sign_give_no_url_rather_than_an_error(unique_prefix):
    import datetime as dt

    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    from common.storage.gcs import GcsBlobStore
    from tests.conftest import require_service

    require_service("STORAGE_EMULATOR_HOST", "GCS emulator")
    client = storage.Client(project="test-proj", credentials=AnonymousCredentials())
    client.create_bucket(f"it-{unique_prefix}")
    store = GcsBlobStore(f"it-{unique_prefix}", client)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    assert store.signed_url("a/chart.html", expires_at=later, content_type="text/html") is None
    assert store.upload_url("a/upload.csv", expires_at=later, max_bytes=10) is None  # the API takes the bytes
