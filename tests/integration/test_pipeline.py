"""A question end to end: submit, the stages as tasks, the answer, the chart, history, and what can go wrong.

Everything is real but the models: the functions through functions-framework, the local task dispatcher,
SQLite and local files, DuckDB, vl-convert, and LiteLLM calling the scripted provider.
"""

from __future__ import annotations

import pytest

from common.auth import Tenant
from common.services import query_jobs
from common.services.pipeline.job import JobRequest
from tests.integration.pipeline_fixtures import SERVER_KEY
from tests.scripted_llm import Fault, Reply

# A full question whose chart a model designs (the planner's hint is "auto"): two rounds, three calls.
FULL_QUESTION = ["planner", "visualizer", "analyst"]


@pytest.fixture
def sales(pipeline):
    pipeline.upload("sales")
    return pipeline


def test_a_question_is_answered_with_numbers_chart_sql_and_history(sales, analyst):
    submitted = sales.ask("Compare revenue by region")
    body = sales.wait(submitted["query_id"])
    assert body["status"] == "succeeded", body
    answer = body["answer"]
    assert answer["sql"].startswith("SELECT") and "sales" in answer["sql"]
    assert answer["table"]["rows"] == [{"region": "North", "revenue": 250}, {"region": "South", "revenue": 80}]
    assert "<strong>Bottom line:</strong>" in answer["answer_html"]
    assert answer["unverified_numbers"] == []
    assert answer["plan_explainer"] == "I will sum revenue per region and chart it."
    assert answer["provenance"]["datasets"].keys() == {"sales.csv"}
    assert answer["provenance"]["models"] == ["scripted/model"] and answer["usage"]["calls"] == 3
    assert set(answer["provenance"]["prompt_versions"]) == set(FULL_QUESTION)
    assert all(state["state"] == "done" for state in body["stages"].values())
    assert list(body["stages"]) == ["plan", "manipulate", "visualize", "compile"]

    assert sorted(analyst.agents_called()) == sorted(FULL_QUESTION)
    assert body["usage"]["calls"] == 3 and body["usage"]["cost_usd"] > 0 and body["usage"]["prompt_tokens"] == 300

    chart = answer["chart"]
    assert chart["kind"] == "bar" and chart["spec"]["data"]["values"][0]["region"] == "North"
    page = sales.call("GET", chart["html_url"], user="nobody")  # the signature is the permission
    assert page.status_code == 200 and page.mimetype == "text/html" and b"<html" in page.get_data()[:500].lower()
    assert sales.call("GET", chart["png_url"], user="nobody").get_data()[:4] == b"\x89PNG"

    session = sales.call("GET", f"/api/v1/sessions/{submitted['session_id']}").get_json()
    assert [(turn["role"], turn["content"][:12]) for turn in session["history"]] == [
        ("user", "Compare reve"), ("assistant", "**Bottom lin")]


def test_the_servers_key_is_used_and_a_request_key_wins_without_being_kept(sales, analyst):
    sales.wait(sales.ask("Compare revenue by region")["query_id"])
    assert {key for _, _, key in analyst.calls} == {SERVER_KEY}
    analyst.calls.clear()
    submitted = sales.ask("Compare revenue by region", apiKey="sk-user-own-key-abcdefghijklmnop")
    sales.wait(submitted["query_id"])
    assert {key for _, _, key in analyst.calls} == {"sk-user-own-key-abcdefghijklmnop"}
    stored = query_jobs.get_job(sales.context.metadata, Tenant("alice"), submitted["query_id"]).to_data()
    assert "secrets" not in stored and "sk-user-own" not in str(stored)


def test_the_planners_sql_runs_without_another_call_and_a_failing_one_goes_to_the_manipulator(sales, analyst):
    analyst.sql.extend(["SELECT nope FROM sales", "DROP TABLE sales"])
    body = sales.wait(sales.ask("Compare revenue by region")["query_id"])
    assert body["status"] == "succeeded", body
    manipulator_prompts = [messages[-1]["content"] for agent, messages, _ in analyst.calls if agent == "manipulator"]
    assert len(manipulator_prompts) == 2  # two repairs: the planner's SQL, then the first repair, failed
    assert "nope" in manipulator_prompts[0] and "DROP" in manipulator_prompts[1]
    assert body["usage"]["calls"] == 5


def test_sql_that_never_works_fails_the_question_with_the_reason(sales, analyst):
    analyst.sql.extend(["SELECT nope FROM sales"] * 3)
    body = sales.wait(sales.ask("Compare revenue by region")["query_id"])
    assert body["status"] == "failed" and body["error"]["code"] == "SQL_FAILED"
    assert analyst.agents_called().count("manipulator") == 2
    assert "visualizer" not in analyst.agents_called()


def test_a_malformed_reply_is_asked_again_once(sales, analyst):
    analyst.fail_next("planner", Reply("I think this is about revenue"))
    body = sales.wait(sales.ask("Compare revenue by region")["query_id"])
    assert body["status"] == "succeeded"
    assert analyst.agents_called().count("planner") == 2


def test_a_chart_naming_an_unknown_column_is_asked_again(sales, analyst):
    bad = {**analyst.spec, "encoding": {"x": {"field": "territory", "type": "nominal"}}}
    import json

    analyst.fail_next("visualizer", Reply(json.dumps(bad)))
    body = sales.wait(sales.ask("Compare revenue by region")["query_id"])
    assert body["status"] == "succeeded" and body["answer"]["chart"]["kind"] == "bar"
    retry = [messages[-1]["content"] for agent, messages, _ in analyst.calls if agent == "visualizer"][1]
    assert "territory" in retry


def test_rate_limits_are_retried_and_an_exhausted_model_fails_the_question(sales, analyst):
    analyst.fail_next("planner", Fault("rate_limit"), Fault("rate_limit"))
    assert sales.wait(sales.ask("Compare revenue by region")["query_id"])["status"] == "succeeded"
    analyst.fail_next("analyst", Fault("server_error"), Fault("server_error"), Fault("server_error"))
    body = sales.wait(sales.ask("Compare revenue by region")["query_id"])
    assert body["status"] == "failed" and body["error"]["code"] == "LLM_UNAVAILABLE"


def test_small_talk_gets_a_short_answer_and_no_query(sales, analyst):
    analyst.plan = {**analyst.plan, "scope": "small_talk", "chart": "none", "insight": False}
    body = sales.wait(sales.ask("hello there")["query_id"])
    assert body["status"] == "succeeded" and body["answer"]["sql"] is None
    assert analyst.agents_called() == ["planner"]


def test_no_insight_means_a_brief_answer(sales, analyst):
    body = sales.wait(sales.ask("Compare revenue by region", include_insight=False)["query_id"])
    assert body["status"] == "succeeded", body
    prompt = next(messages[-1]["content"] for agent, messages, _ in analyst.calls if agent == "analyst")
    assert "Depth: brief" in prompt


def test_an_obvious_chart_comes_from_a_template_in_two_calls(sales, analyst):
    analyst.plan = {**analyst.plan, "chart": "bar", "chart_title": "Revenue by region, all time"}
    body = sales.wait(sales.ask("Compare revenue by region")["query_id"])
    assert body["status"] == "succeeded", body
    assert analyst.agents_called() == ["planner", "analyst"]
    chart = body["answer"]["chart"]
    assert chart["kind"] == "bar" and chart["title"] == "Revenue by region, all time"
    assert [row["region"] for row in chart["spec"]["data"]["values"]] == ["North", "South"]
    assert set(body["answer"]["provenance"]["prompt_versions"]) == {"planner", "analyst"}
    analyst_prompt = next(messages[-1]["content"] for agent, messages, _ in analyst.calls if agent == "analyst")
    assert "a bar chart titled 'Revenue by region, all time'" in analyst_prompt


def test_no_chart_wanted_means_no_visualize_stage(sales, analyst):
    analyst.plan = {**analyst.plan, "chart": "none"}
    body = sales.wait(sales.ask("What is the total revenue?")["query_id"])
    assert body["stages"]["visualize"]["state"] == "skipped" and body["answer"]["chart"] is None
    assert analyst.agents_called() == ["planner", "analyst"]


def test_a_follow_up_sees_the_previous_result(sales, analyst):
    first = sales.ask("Compare revenue by region")
    sales.wait(first["query_id"])
    analyst.calls.clear()
    sales.wait(sales.ask("now only North", session_id=first["session_id"])["query_id"])
    planner_prompt = next(messages[-1]["content"] for agent, messages, _ in analyst.calls if agent == "planner")
    assert "Compare revenue by region" in planner_prompt and "SUM(revenue)" in planner_prompt


def test_a_repeated_task_delivery_does_nothing(sales, analyst):
    submitted = sales.ask("Compare revenue by region")
    sales.wait(submitted["query_id"])
    before = len(analyst.calls)
    agents = sales.context
    from common.services.pipeline import runner

    for stage in ("plan", "manipulate", "visualize", "compile"):
        result = runner.run_stage(agents, {"tenant": "alice", "query_id": submitted["query_id"], "stage": stage},
                                  last_attempt=False)
        assert result["ran"] is False
    assert len(analyst.calls) == before
    session = sales.call("GET", f"/api/v1/sessions/{submitted['session_id']}").get_json()
    assert len(session["history"]) == 2


def test_history_is_written_before_the_question_says_it_succeeded(sales, analyst, monkeypatch):
    finish_job, seen = query_jobs.finish_job, []

    def finish_after_checking_history(metadata, tenant, query_id, status, **kwargs):
        if status == "succeeded":
            job = query_jobs.get_job(metadata, tenant, query_id)
            seen.append(len(sales.call("GET", f"/api/v1/sessions/{job.session_id}").get_json()["history"]))
            if len(seen) == 1:
                raise RuntimeError("the worker died between storing the answer and finishing the job")
        return finish_job(metadata, tenant, query_id, status, **kwargs)

    monkeypatch.setattr(query_jobs, "finish_job", finish_after_checking_history)
    submitted = sales.ask("Compare revenue by region")
    assert sales.wait(submitted["query_id"])["status"] == "succeeded"  # the redelivered task finished it
    assert seen == [2, 2]
    assert len(analyst.calls) == len(FULL_QUESTION)  # finishing took no second answer


def test_another_tenant_sees_nothing(sales, analyst):
    submitted = sales.ask("Compare revenue by region")
    sales.wait(submitted["query_id"])
    assert sales.call("GET", f"/api/v1/queries/{submitted['query_id']}", user="bob").status_code == 404
    assert sales.call("DELETE", f"/api/v1/queries/{submitted['query_id']}", user="bob").status_code == 404
    assert sales.call("GET", f"/api/v1/sessions/{submitted['session_id']}", user="bob").status_code == 404
    assert sales.call("GET", "/api/v1/sessions", user="bob").get_json()["items"] == []
    assert sales.call("POST", "/api/v1/queries", user="bob",
                      json={"domain": "sales", "prompt": "x"}).get_json()["error"]["code"] == "NEED_UPLOAD"


@pytest.mark.parametrize("body,status,code", [
    ({"prompt": "x"}, 400, "MISSING_FIELD"),
    ({"domain": "sales"}, 400, "MISSING_FIELD"),
    ({"domain": "sales", "prompt": "x", "datasets": ["nope.csv"]}, 404, "DATASET_NOT_FOUND"),
    ({"domain": "empty", "prompt": "x"}, 409, "NEED_UPLOAD"),
    ({"domain": "sales", "prompt": "x", "visual_hint": "pie"}, 400, "BAD_REQUEST"),
    ({"domain": "sales", "prompt": "x", "include_insight": "maybe"}, 400, "BAD_REQUEST"),
    ({"domain": "sales", "prompt": "x", "provider": "openai"}, 400, "INVALID_MODEL"),
])
def test_bad_questions_are_4xx_and_create_nothing(sales, analyst, body, status, code):
    response = sales.call("POST", "/api/v1/queries", json=body)
    assert response.status_code == status, response.get_json()
    assert response.get_json()["error"]["code"] == code
    assert sales.context.metadata.list(query_jobs.COLLECTION, "alice") == []
    assert analyst.calls == []


def test_a_session_exports_as_pdf_with_its_chart(sales, analyst):
    import io

    from pypdf import PdfReader

    submitted = sales.ask("Compare revenue by region")
    sales.wait(submitted["query_id"])
    response = sales.call("POST", f"/api/v1/sessions/{submitted['session_id']}/export")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    reader = PdfReader(io.BytesIO(response.get_data()))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "Compare revenue by region" in text and "Bottom line" in text and "SUM(revenue)" in text
    assert any(page.images for page in reader.pages)  # the chart, as an image
    assert sales.call("POST", f"/api/v1/sessions/{submitted['session_id']}/export", user="bob").status_code == 404


def test_a_session_export_stops_at_its_size_budget_and_says_so(sales, analyst):
    import io

    from pypdf import PdfReader

    first = sales.ask("Compare revenue by region")
    sales.wait(first["query_id"])
    for prompt in ("And by region again", "Once more by region"):
        sales.wait(sales.ask(prompt, session_id=first["session_id"])["query_id"])
    # Room for the first question, its answer and chart image; not for the turns after.
    sales.context.settings = sales.context.settings.replace(export_max_bytes=20_000)
    response = sales.call("POST", f"/api/v1/sessions/{first['session_id']}/export")
    assert response.status_code == 200
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(response.get_data())).pages)
    assert "Compare revenue by region" in text and "Once more by region" not in text
    assert "later messages are not included" in text and "EXPORT_MAX_BYTES" in text


def test_an_invented_number_is_marked_in_the_answer_and_its_pdf(sales, analyst):
    import io

    from pypdf import PdfReader

    analyst.answer = "**Bottom line:** North made 250, South 80; the East made 4,321."
    submitted = sales.ask("Compare revenue by region")
    answer = sales.wait(submitted["query_id"])["answer"]
    assert answer["unverified_numbers"] == ["4,321"]
    assert answer["answer_markdown"].startswith("**Bottom line:** North made 250, South 80; the East made 4,321\u2020.")
    assert answer["answer_markdown"].endswith("\u2020 Not found in the query result: check the figures marked "
                                              "\u2020 before relying on them.*\n")
    assert ('<mark class="unverified" title="not found in the query result">4,321\u2020</mark>'
            in answer["answer_html"]) and answer["answer_html"].count("<mark") == 1
    response = sales.call("POST", f"/api/v1/sessions/{submitted['session_id']}/export")
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(response.get_data())).pages)
    assert "Bottom line: North made 250" in text and "**" not in text
    assert "4,321\u2020" in text and "\u2020 Not found in the query result" in text


def test_documents_only_domain_gets_a_text_answer(pipeline, analyst):
    from tests.documents import pdf_with_text

    pipeline.upload("reports", name="q3.pdf", content=pdf_with_text(["Revenue grew 12 percent in Q3"]))
    body = pipeline.wait(pipeline.ask("What happened to revenue?", domain="reports")["query_id"])
    assert body["status"] == "succeeded", body
    assert analyst.agents_called() == ["text_answer"]
    assert body["answer"]["sql"] is None and "12 percent" in body["answer"]["answer_markdown"]
    documents = next(messages[-1]["content"] for agent, messages, _ in analyst.calls if agent == "text_answer")
    assert "Revenue grew 12 percent in Q3" in documents


def test_events_stream_the_stages_until_the_end(sales, analyst):
    submitted = sales.ask("Compare revenue by region")
    response = sales.call("GET", submitted["events_url"])
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    text = response.get_data(as_text=True)
    assert text.count("event: progress") >= 1 and "event: end" in text
    assert '"status": "succeeded"' in text.split("event: end")[1]


def test_cancel_stops_before_the_next_model_call(sales, analyst):
    import threading

    from tests.scripted_llm import install_scripted_llm

    reached, release = threading.Event(), threading.Event()
    original = analyst.__call__

    def slow_planner(call):  # hold the plan stage inside its model call
        if analyst.agent_of(call.messages) == "planner":
            reached.set()
            release.wait(30)
        return original(call)

    install_scripted_llm().respond("scripted/model", slow_planner)
    submitted = sales.ask("Compare revenue by region")
    assert reached.wait(30), "the plan stage never reached the planner"
    cancelled = sales.call("DELETE", f"/api/v1/queries/{submitted['query_id']}").get_json()
    assert cancelled["cancel_requested"] is True
    release.set()
    body = sales.wait(submitted["query_id"])
    assert body["status"] == "cancelled"
    assert analyst.agents_called() == ["planner"]


@pytest.mark.parametrize("answer_cache_ttl", [3600])
def test_the_same_question_on_the_same_data_is_answered_from_the_cache(sales, analyst, answer_cache_ttl):
    first = sales.wait(sales.ask("Compare revenue by region")["query_id"])
    analyst.calls.clear()
    again = sales.wait(sales.ask("compare  revenue BY region")["query_id"])
    assert again["status"] == "succeeded" and again["answer"]["cached"] is True
    assert again["answer"]["answer_markdown"] == first["answer"]["answer_markdown"]
    assert analyst.calls == []
    history = sales.call("GET", f"/api/v1/sessions/{again['session_id']}").get_json()["history"]
    assert len(history) == 2  # the cached answer is still a turn of its conversation
    sales.upload("sales", content=b"region,revenue\nWest,5\n")  # a new version of the data: a new answer
    assert "cached" not in sales.wait(sales.ask("Compare revenue by region")["query_id"])["answer"]
    assert analyst.calls


@pytest.mark.parametrize("answer_cache_ttl", [3600])
def test_questions_are_answered_while_the_answer_cache_is_down(sales, analyst, answer_cache_ttl, monkeypatch):
    from tests.doubles import CacheThatIsDown

    sales.context.override("cache", CacheThatIsDown())
    for _ in range(2):
        answered = sales.wait(sales.ask("Compare revenue by region")["query_id"])
        assert answered["status"] == "succeeded" and "cached" not in answered["answer"]
    assert len(analyst.calls) == 2 * len(FULL_QUESTION)


def test_each_finished_question_is_one_structured_log_record(sales, analyst, caplog):
    caplog.set_level("INFO", logger="convoinsight.pipeline")
    answered = sales.wait(sales.ask("Compare revenue by region")["query_id"])
    analyst.sql.extend(["SELECT nope FROM sales"] * 3)
    failed = sales.wait(sales.ask("Compare revenue by region")["query_id"])
    finished = {record.fields["query_id"]: record.fields for record in caplog.records
                if getattr(record, "fields", {}).get("event") == "question_finished"}
    assert set(finished) == {answered["query_id"], failed["query_id"]}  # once each, however many deliveries
    ok = finished[answered["query_id"]]
    assert ok["status"] == "succeeded" and ok["calls"] == len(FULL_QUESTION) and ok["models"] == ["scripted/model"]
    assert ok["prompt_tokens"] > 0 and ok["cost_usd"] > 0 and ok["duration_ms"] >= 0 and ok["error_code"] is None
    assert finished[failed["query_id"]]["status"] == "failed"
    assert finished[failed["query_id"]]["error_code"] == failed["error"]["code"]


@pytest.mark.parametrize("route", ["v1", "legacy"])
def test_a_cancel_between_stages_ends_the_question_and_deletes_its_queued_stage_tasks(sales, analyst, route):
    from tests.doubles import TaskQueueRecordingDeletes

    context, alice = sales.context, Tenant("alice")
    recorder = TaskQueueRecordingDeletes(context.tasks)
    context.override("tasks", recorder)
    query_jobs.create_job(context.metadata, alice, query_id="q_between", session_id="s_between", domain="sales",
                          prompt="Compare revenue by region", request=JobRequest(model_id="scripted/model"),
                          now=context.clock.now())
    query_jobs.claim_stage(context.metadata, alice, "q_between", "plan", now=context.clock.now(), lease_seconds=60)
    # The plan is done; its next stage's task would be waiting in the queue now.
    query_jobs.finish_stage(context.metadata, alice, "q_between", "plan", lambda job: None, now=context.clock.now())
    if route == "v1":
        assert sales.call("DELETE", "/api/v1/queries/q_between").get_json()["status"] == "cancelled"
    else:
        assert sales.call("POST", "/query/cancel", json={"session_id": "s_between"}).get_json()["cancelled"] is True
    assert sales.call("GET", "/api/v1/queries/q_between").get_json()["status"] == "cancelled"
    assert sorted(recorder.deleted) == [f"q_between-{stage}" for stage in ("compile", "manipulate", "visualize")]
    assert analyst.calls == []


def test_a_question_cancelled_while_queued_is_logged_as_finished_once(sales, analyst, caplog):
    caplog.set_level("INFO", logger="convoinsight.pipeline")
    deps = sales.context
    query_jobs.create_job(deps.metadata, Tenant("alice"), query_id="q_queued", session_id="s1", domain="sales",
                          prompt="Compare revenue by region", request=JobRequest(model_id="scripted/model"),
                          now=deps.clock.now())  # no task yet
    for _ in range(2):
        assert sales.call("DELETE", "/api/v1/queries/q_queued").get_json()["status"] == "cancelled"
    finished = [record.fields for record in caplog.records
                if getattr(record, "fields", {}).get("event") == "question_finished"]
    assert [(entry["query_id"], entry["status"]) for entry in finished] == [("q_queued", "cancelled")]
