"""The original API's question routes, as its frontend calls them (FRONTEND_CONTRACT.md §Q1-§Q3, §10)."""

from __future__ import annotations

import urllib.parse

import pytest

FRONTEND_QUERY = {"domain": "Campaign", "prompt": "Compare revenue by region", "session_id": "1732100000000",
                  "includeInsight": True, "provider": "SCRIPTED", "model": "scripted/model", "userId": "alice"}


@pytest.fixture
def campaign(pipeline):
    pipeline.upload("campaign")
    return pipeline


def test_query_answers_synchronously_in_the_original_shape(campaign, analyst):
    response = campaign.call("POST", "/query", json=FRONTEND_QUERY)
    assert response.status_code == 200, response.get_json()
    assert response.headers["Deprecation"] == "true"
    body = response.get_json()
    assert body["session_id"] == "1732100000000"
    assert body["response"].startswith("<p><strong>Bottom line:</strong>")
    assert body["need_manipulator"] and body["need_visualizer"] and body["need_analyzer"]
    assert body["plan_explainer"] and body["diagram_kind"] == "charts" and body["execution_time"] > 0
    assert body["diagram_signed_url"] is None and body["diagram_public_url"] == ""
    # The frontend prefixes chart_url with the API base and fetches it, with no credential, much later.
    chart = campaign.call("GET", body["chart_url"], user="")
    assert chart.status_code == 200 and chart.mimetype == "text/html"


def test_the_chart_url_cannot_be_altered(campaign, analyst):
    chart_url = campaign.call("POST", "/query", json=FRONTEND_QUERY).get_json()["chart_url"]
    path, _, query = chart_url.partition("?")
    other = path.replace("/charts/alice/", "/charts/bob/")
    assert campaign.call("GET", f"{other}?{query}", user="").status_code == 403
    assert campaign.call("GET", path, user="").status_code == 403
    assert campaign.call("GET", "/charts/..%2F..%2Fetc/passwd.html", user="").status_code in (403, 404)


def test_errors_keep_the_original_codes(campaign, analyst):
    missing = campaign.call("POST", "/query", json={**FRONTEND_QUERY, "dataset": ["nope.csv"]})
    assert missing.status_code == 404 and missing.get_json()["code"] == "DATASET_NOT_FOUND"
    empty = campaign.call("POST", "/query", json={**FRONTEND_QUERY, "domain": "empty"})
    assert empty.status_code == 409 and empty.get_json() == {"detail": empty.get_json()["detail"],
                                                            "code": "NEED_UPLOAD"}
    no_prompt = campaign.call("POST", "/query", json={"domain": "campaign", "userId": "alice"})
    assert no_prompt.status_code == 400 and "prompt" in no_prompt.get_json()["detail"]
    someone_else = campaign.call("POST", "/query", json={**FRONTEND_QUERY, "userId": "bob"})
    assert someone_else.status_code == 403


def test_a_failed_answer_is_a_detail_the_frontend_can_show(campaign, analyst):
    analyst.sql.extend(["SELECT nope FROM sales"] * 3)
    response = campaign.call("POST", "/query", json=FRONTEND_QUERY)
    assert response.status_code == 502
    assert response.get_json()["code"] == "SQL_FAILED" and "<" not in response.get_json()["detail"]


def test_suggest_returns_four_questions(campaign, analyst):
    response = campaign.call("POST", "/suggest", json={"domain": "Campaign", "dataset": ["sales.csv"],
                                                       "provider": "scripted", "model": "scripted/model",
                                                       "userId": "alice"})
    assert response.status_code == 200, response.get_json()
    assert len(response.get_json()["suggestions"]) == 4


def test_sessions_and_history(campaign, analyst):
    campaign.call("POST", "/query", json=FRONTEND_QUERY)
    items = campaign.call("GET", "/sessions?userId=alice").get_json()["items"]
    assert [item["session_id"] for item in items] == ["1732100000000"]
    history = campaign.call("GET", "/sessions/1732100000000/history").get_json()["history"]
    assert [turn["role"] for turn in history] == ["user", "assistant"] and isinstance(history[0]["ts"], float)
    assert campaign.call("GET", "/sessions/1732100000000/history", user="bob").status_code == 404
    assert campaign.call("GET", "/sessions", user="bob").get_json()["items"] == []


def test_cancel_with_nothing_running_cancels_nothing_later(campaign, analyst):
    assert campaign.call("POST", "/query/cancel", json={"session_id": "1732100000000"}).get_json()["cancelled"] \
        is False
    assert campaign.call("POST", "/query", json=FRONTEND_QUERY).status_code == 200  # no stale flag


def test_supabase_chart_routes_are_gone(campaign):
    response = campaign.call("GET", "/charts/sb/list?prefix=x")
    assert response.status_code == 410 and "/api/v1" in response.get_json()["detail"]


def test_legacy_chart_path_is_url_safe(campaign, analyst):
    chart_url = campaign.call("POST", "/query", json=FRONTEND_QUERY).get_json()["chart_url"]
    assert chart_url.startswith("/charts/") and urllib.parse.urlsplit(chart_url).query
