"""Which conversation a question joins (issue 10, item 8).

On v1 a new conversation is made by leaving ``session_id`` out; naming one that does not exist is a 404, not a
silent new session (a mistyped id would otherwise lose the conversation's context without a word). The
original API's ``/query`` keeps taking a client-made id as a new session: its frontend makes its own ids.
"""

from __future__ import annotations

import pytest

from common.auth import Tenant
from common.services import query_jobs
from common.services.pipeline.job import JobRequest


@pytest.fixture
def sales(pipeline):
    pipeline.upload("sales")
    return pipeline


def test_an_unknown_session_is_404_and_no_question_starts(sales):
    response = sales.call("POST", "/api/v1/queries", json={"domain": "sales", "prompt": "total?",
                                                             "session_id": "s_made_up"})
    assert response.status_code == 404
    error = response.get_json()["error"]
    assert error["code"] == "SESSION_NOT_FOUND" and "omit session_id" in error["message"]
    assert sales.call("GET", "/api/v1/sessions").get_json()["items"] == []


def test_a_session_continues_even_while_its_first_question_is_running(sales):
    # A session's summary is written with its first answer; until then its running question is what makes it.
    query_jobs.create_job(sales.context.metadata, Tenant("alice"), query_id="q_running", session_id="s_new",
                          domain="sales", prompt="first", request=JobRequest(model_id="scripted/model"),
                          now=sales.context.clock.now())
    assert sales.call("GET", "/api/v1/sessions/s_new").status_code == 404
    second = sales.ask("now only North", session_id="s_new")
    assert second["session_id"] == "s_new"
    assert sales.wait(second["query_id"])["status"] == "succeeded"


def test_a_finished_session_is_continued(sales):
    first = sales.ask("Compare revenue by region")
    sales.wait(first["query_id"])
    second = sales.ask("now only North", session_id=first["session_id"])
    assert sales.wait(second["query_id"])["status"] == "succeeded"
    history = sales.call("GET", f"/api/v1/sessions/{first['session_id']}").get_json()["history"]
    assert len(history) == 4


def test_another_tenants_session_is_404(sales):
    first = sales.ask("Compare revenue by region")
    sales.wait(first["query_id"])
    sales.upload("sales", user="bob")
    response = sales.call("POST", "/api/v1/queries", user="bob",
                          json={"domain": "sales", "prompt": "total?", "session_id": first["session_id"]})
    assert response.status_code == 404


def test_the_original_query_route_takes_a_client_made_session_id(sales):
    response = sales.call("POST", "/query", json={"userId": "alice", "domain": "sales", "prompt": "total?",
                                                  "session_id": "frontend-made-1"})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["session_id"] == "frontend-made-1"
