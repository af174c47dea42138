"""The query job's codec: jobs stored before it existed load, and store back exactly as they were."""

from __future__ import annotations

import copy

from common.services.pipeline.job import Answer, JobRequest, Plan, QueryJob, Result, StageState

# A finished job as the pipeline stored it before QueryJob existed (every field a stage wrote).
STORED = {
    "query_id": "q_1", "session_id": "s_1", "domain": "sales", "prompt": "Compare revenue by region",
    "request": {"datasets": [], "pg_tokens": [], "model_id": "scripted/model", "include_insight": True,
                "visual_hint": None, "api_base": None, "model_params": {}, "answer_key": "answer:alice:ab"},
    "status": "succeeded", "cancel_requested": False, "created": "2026-01-01T00:00:00+00:00",
    "finished": "2026-01-01T00:00:02+00:00",
    "stages": {"plan": {"state": "done", "claim": "c1", "started_at": "t0", "lease_until": "t9", "finished_at": "t1"},
               "manipulate": {"state": "done", "claim": "c2", "started_at": "t1", "lease_until": "t9",
                              "finished_at": "t2"},
               "visualize": {"state": "skipped"}, "analyze": {"state": "skipped"},
               "compile": {"state": "done", "claim": "c3", "started_at": "t2", "lease_until": "t9",
                           "finished_at": "t3"}},
    "usage": {"calls": [{"agent": "router", "model": "scripted/model", "ok": True, "error": None,
                         "prompt_tokens": 10, "completion_tokens": 2, "cost_usd": 0.001, "latency_ms": 1.0}],
              "prompt_tokens": 10, "completion_tokens": 2, "cost_usd": 0.001},
    "context": {"tables": "t", "attachments": "(none)", "turns": "(none)", "previous_result": "(none)",
                "versions": {"sales.csv": "v1"}, "documents": "", "pg_tables": [],
                "config": {"prompt_values": {"answer_settings": "x"}, "model_overrides": {}}},
    "plan": {"scope": "data_question", "need_manipulator": True, "need_visualizer": False, "need_analyzer": False,
             "visual_hint": "auto", "reason": "r", "mode": "tables",
             "tasks": {"manipulator_prompt": "m", "visualizer_prompt": "", "analyzer_prompt": "",
                       "compiler_instruction": "c", "plan_explainer": "p"}},
    "plan_explainer": "p",
    "result": {"sql": "SELECT 1", "columns": [{"name": "n", "dtype": "Int64"}], "row_count": 1, "truncated": False,
               "elapsed_ms": 1.5, "tables": {"sales": "sales.csv"}, "engine": "duckdb",
               "key": "tenants/alice/queries/q_1/result.json", "attempts": []},
    "answer": {"scope": "data_question", "answer_markdown": "**1**", "answer_html": "<p><strong>1</strong></p>",
               "chart": None, "table": None, "sql": "SELECT 1", "plan_explainer": "p", "unverified_numbers": [],
               "provenance": {"datasets": {"sales.csv": "v1"}, "model": "scripted/model"}},
}


def test_a_job_stored_before_the_codec_loads_typed_and_stores_back_unchanged():
    job = QueryJob.from_data(copy.deepcopy(STORED))
    assert job.result.columns == [{"name": "n", "dtype": "Int64"}] and job.plan.need_manipulator is True
    assert job.stages["compile"] == StageState(state="done", claim="c3", started_at="t2", lease_until="t9",
                                               finished_at="t3")
    assert isinstance(job.answer, Answer) and job.answer.chart is None and job.usage.prompt_tokens == 10
    stored = job.to_data()
    assert stored == {**STORED, "result": {**STORED["result"], "reused": False}}


def test_a_new_job_stores_only_what_it_has():
    job = QueryJob(query_id="q_2", session_id="s", domain="d", prompt="p", request=JobRequest(model_id="m"),
                   created="t")
    stored = job.to_data()
    assert stored["stages"] == {stage: {"state": "pending"} for stage in ("plan", "manipulate", "visualize",
                                                                           "compile")}
    assert {"result", "plan", "answer", "secrets", "error", "finished"}.isdisjoint(stored)
    assert QueryJob.from_data(stored) == job


def test_fields_a_later_version_dropped_are_ignored_and_old_answers_keep_their_shape():
    job = QueryJob.from_data({**STORED, "a_field_no_longer_kept": 1})
    assert "a_field_no_longer_kept" not in job.to_data()
    assert "cached" not in job.answer.to_data()  # only a reused answer says it was cached
    assert Answer.from_data({**STORED["answer"], "cached": True}).to_data()["cached"] is True


def test_a_reused_result_carries_its_rows():
    result = Result(sql="s", columns=[], row_count=1, rows=[{"n": 1}], reused=True)
    job = QueryJob(query_id="q", session_id="s", domain="d", prompt="p", request=JobRequest(model_id="m"),
                   created="t", result=result, plan=Plan(scope="data_question"))
    assert QueryJob.from_data(job.to_data()).result == result
