"""Deleting a session takes what it made with it: its questions, results, charts and every link to them."""

from __future__ import annotations

import pytest

from common.auth import Tenant
from common.storage import keys
from tests.integration.test_legacy_questions import FRONTEND_QUERY


@pytest.fixture
def campaign(pipeline):
    pipeline.upload("campaign")
    return pipeline


def test_a_deleted_sessions_questions_charts_and_links_are_gone(campaign, analyst):
    legacy = campaign.call("POST", "/query", json=FRONTEND_QUERY).get_json()
    session_id, query_id = legacy["session_id"], legacy["query_id"]
    answer = campaign.call("GET", f"/api/v1/queries/{query_id}").get_json()["answer"]
    chart = answer["chart"]
    links = [chart["html_url"], chart["png_url"], legacy["chart_url"]]
    assert all(campaign.call("GET", link, user="").status_code == 200 for link in links)
    result_key = keys.result_key(Tenant("alice"), query_id)
    assert campaign.context.blobs.stat(result_key)

    deleted = campaign.call("DELETE", f"/api/v1/sessions/{session_id}")
    assert deleted.status_code == 200
    assert deleted.get_json() == {"deleted": True, "session_id": session_id, "turns": 2, "queries": 1, "charts": 1}

    assert campaign.call("GET", f"/api/v1/sessions/{session_id}").status_code == 404
    assert campaign.call("GET", f"/api/v1/queries/{query_id}").status_code == 404
    assert campaign.call("GET", f"/api/v1/charts/{chart['chart_id']}").status_code == 404
    assert campaign.call("GET", f"/api/v1/charts?session_id={session_id}").get_json()["items"] == []
    assert [campaign.call("GET", link, user="").status_code for link in links] == [404, 404, 404]
    assert list(campaign.context.blobs.list(keys.question_prefix(Tenant("alice"), query_id) + "/")) == []
    assert campaign.call("DELETE", f"/api/v1/sessions/{session_id}").status_code == 404


def test_a_stage_delivered_after_its_session_was_deleted_does_nothing(campaign, analyst):
    from common.services.pipeline import runner

    legacy = campaign.call("POST", "/query", json=FRONTEND_QUERY).get_json()
    assert campaign.call("DELETE", f"/api/v1/sessions/{legacy['session_id']}").status_code == 200
    before = len(analyst.calls)
    outcome = runner.run_stage(campaign.context, {"tenant": "alice", "query_id": legacy["query_id"],
                                                  "stage": "compile"}, last_attempt=False)
    assert outcome == {"stage": "compile", "ran": False} and len(analyst.calls) == before
    assert campaign.call("GET", f"/api/v1/sessions/{legacy['session_id']}").status_code == 404
