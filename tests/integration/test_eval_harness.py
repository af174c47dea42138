"""The accuracy harness (evaluation/, `make eval`): its rules as pure functions, then one whole run.

The whole run is `python -m evaluation` as a user starts it: the harness starts the local emulator as a child
process on loopback, uploads the bundled data and asks every bundled question over HTTP. The model is a test
double: an OpenAI-compatible server on loopback (``LLM_API_BASE``), scripted per question to answer most
questions with their reference SQL and some wrongly on purpose, so the report must tell them apart. Its
accuracy says nothing about any real model.
"""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from evaluation import __main__ as cli
from evaluation.cases import CASES, Case, select
from evaluation.grading import canonical, grade, match_table
from evaluation.reference import reference_tables
from evaluation.report import exit_code, markdown, percentile, totals
from evaluation.rounds import count_rounds
from evaluation.runner import CaseResult
from tests.model_server import ModelServer, Reply, user_text

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def call(start_ms: float, latency_ms: float, agent: str = "a", **fields) -> dict:
    return {"agent": agent, "started_at": (T0 + dt.timedelta(milliseconds=start_ms)).isoformat(),
            "latency_ms": latency_ms, "ok": True, **fields}


def test_rounds_count_sequential_and_overlapping_calls():
    assert count_rounds([]) == 0
    assert count_rounds([call(0, 100), call(100, 50), call(200, 10)]) == 3  # touching windows ran one after another
    assert count_rounds([call(0, 100), call(300, 500, "viz"), call(310, 200, "ana"), call(900, 10)]) == 3
    assert count_rounds([call(0, 100), call(90, 100), call(180, 100)]) == 1  # a chain of overlaps is one round


def test_rounds_count_untimed_calls_alone_and_chain_retries():
    untimed = {"agent": "x", "latency_ms": 5, "ok": True}
    assert count_rounds([call(0, 100), untimed, {**untimed, "started_at": "not a time"}]) == 3
    # Three attempts of one agent call share its started_at, but ran one after another (retries, fallback).
    retries = [call(0, 100, "router", ok=False), call(0, 100, "router", ok=False), call(0, 100, "router")]
    assert count_rounds(retries) == 3
    assert count_rounds([*retries, call(50, 20, "other")]) == 3  # inside the first attempt's window
    assert count_rounds([call(0, 100), call(0, 0, "fallback", error="skipped")]) == 1  # no request was made


def test_a_right_and_a_wrong_table_are_told_apart():
    reference = [("North", 120.0), ("South", 80.5)]
    right = [(80.5, "south", 2), (120, "NORTH", 3)]  # names ignored, order free, extra column, case-insensitive
    assert match_table(reference, right) == (True, "")
    wrong_value, reason = match_table(reference, [("North", 120.0), ("South", 95.0)])
    assert not wrong_value and "column 2" in reason
    assert match_table(reference, [*right, ("Total", 200.5, 5)]) == (False, "3 rows, expected 2")
    assert not match_table(reference, [("North",), ("South",)])[0]


def test_numbers_match_within_tolerance_and_rounding_and_shares():
    assert match_table([(1234.5678,)], [("1,234.57",)])[0]
    assert match_table([(1234.5678,)], [(1235.0,)])[0]  # within 0.5%
    assert not match_table([(4.4731,)], [(4.0,)])[0]
    assert match_table([(3.456,)], [(3.5,)])[0]  # one decimal shown: rounding allows 0.05
    assert not match_table([(3.456,)], [(3.6,)])[0]
    assert match_table([(28.477,)], [(0.2848,)], share=True)[0]  # a percentage given as a fraction
    assert not match_table([(28.477,)], [(0.2848,)])[0]
    assert match_table([(28.477,)], [("28.5%",)], share=True)[0]


def test_dates_quarters_and_rankings():
    assert canonical(dt.date(2024, 3, 1)) == canonical("2024-03") == canonical("2024-03-01T00:00:00")
    assert canonical("2024-Q2") == canonical("Q2 2024") == canonical(dt.date(2024, 4, 1))
    assert canonical("Q3") == canonical(3) and canonical("March") == canonical(3)
    assert canonical("March 2024") == canonical("mar 2024") == canonical(dt.datetime(2024, 3, 1))
    ranking = [("Laptop", 900.0), ("Tablet", 500.0)]
    assert match_table(ranking, [("Laptop", 900), ("Tablet", 500), ("Mouse", 20)], ordered=True)[0]
    assert not match_table(ranking, [("Tablet", 500), ("Laptop", 900)], ordered=True)[0]
    assert not match_table(ranking, [("Laptop", 900)], ordered=True)[0]


def test_grade_reads_the_job_view():
    by_id = {case.id: case for case in CASES}
    table = {"columns": [{"name": "n", "dtype": "Int64"}], "rows": [{"n": 800}], "row_count": 1, "truncated": False}
    ok = {"status": "succeeded", "answer": {"scope": "data_question", "table": table}}
    assert grade(by_id["count_orders"], ok, [(["c"], [(800,)])]) == (True, "")
    assert grade(by_id["count_orders"], {"status": "failed", "error": {"code": "X", "message": "m"}}, [])[0] is False
    assert grade(by_id["poem"], {"status": "succeeded", "answer": {"scope": "out_of_scope"}}, []) == (True, "")
    assert grade(by_id["poem"], {"status": "succeeded", "answer": {"scope": "small_talk"}}, [])[0] is False
    doc = {"status": "succeeded", "answer": {"answer_markdown": "Within **30** days."}}
    assert grade(by_id["doc_returns"], doc, []) == (True, "")
    assert not grade(by_id["doc_returns"], {**doc, "answer": {"answer_markdown": "300 days"}}, [])[0]


def test_the_bundled_set_is_complete_and_its_references_run():
    assert len(CASES) >= 40 and len({case.id for case in CASES}) == len({case.prompt for case in CASES}) == len(CASES)
    assert {"data", "scope", "document"} == {case.kind for case in CASES}
    references = reference_tables(CASES)
    assert all(rows for shapes in references.values() for _, rows in shapes)
    assert [case.id for case in select(["fu_only_north"])] == ["fu_region_2024", "fu_by_quarter", "fu_only_north"]


def test_totals_and_exit_code():
    results = [CaseResult(str(n), "data", "t", "q", n < 3, "", "succeeded", calls=4, rounds=3 + n % 2,
                          prompt_tokens=100, completion_tokens=10, cost_usd=0.5, latency_s=float(n)) for n in range(4)]
    total = totals(results)
    assert (total["accuracy_pct"], total["mean_calls"], total["mean_rounds"]) == (75.0, 4, 3.5)
    assert (total["prompt_tokens"], total["completion_tokens"], total["cost_usd"]) == (400, 40, 2)
    assert (total["p50_latency_s"], total["p95_latency_s"]) == (1.0, 3.0) == (percentile([3, 0, 2, 1], 50), 3.0)
    report = {"totals": total}
    assert exit_code(report, None) == 0 and exit_code(report, 75) == 0 and exit_code(report, 80) == 1


# The scripted model: most questions get their reference SQL, these get a deliberately wrong or odd answer.
WRONG_SQL = {
    "count_orders": "SELECT COUNT(*) AS orders FROM orders WHERE channel = 'Online'",
    "top5_products": "SELECT p.product_name, SUM(o.revenue) AS revenue FROM orders o JOIN products p "
                     "ON p.product_id = o.product_id GROUP BY 1 ORDER BY 2 DESC LIMIT 5 OFFSET 1",
    "fu_only_north": CASES[[c.id for c in CASES].index("fu_by_quarter")].references[0],  # forgot the filter
}
RIGHT_BUT_DIFFERENT_SQL = {
    "west_share": "SELECT SUM(o.revenue) FILTER (r.region_name = 'West') / SUM(o.revenue) AS west_fraction "
                  "FROM orders o JOIN customers c USING (customer_id) JOIN regions r USING (region_id)",
    "revenue_by_region": "SELECT r.region_name AS region, ROUND(SUM(o.revenue), 1) AS revenue, COUNT(*) AS orders "
                         "FROM orders o JOIN customers c USING (customer_id) JOIN regions r USING (region_id) "
                         "GROUP BY 1 ORDER BY 2 DESC",
    "revenue_by_channel": "SELECT channel, SUM(revenue) AS revenue FROM orders GROUP BY 1",
    "customers_by_segment": "SELECT segment, COUNT(*) AS customers FROM customers GROUP BY 1",
    "quarterly_revenue_2024": CASES[[c.id for c in CASES].index("quarterly_revenue_2024")].references[1],
}
FAN_OUT = {"revenue_by_region", "revenue_by_channel", "customers_by_segment"}  # a visualizer beside the analyst
WRONG_SCOPE = {"capital": "small_talk"}
DOCUMENT_TEXT = {"doc_returns": "Hardware can be returned within 30 days of delivery.",
                 "doc_vacation": "Employees get 20 vacation days.",  # wrong: the handbook says 25
                 "doc_discount_approval": "The regional manager must approve it."}
WRONG = {*WRONG_SQL, *WRONG_SCOPE, "doc_vacation"}
WARM_UP = Case("warm-up", "Hello!", "scope", "small talk", scope="small_talk")  # the harness's uncounted first
PARALLEL_DELAY_S = 0.3  # long enough that the two fan-out calls overlap on any machine


class ScriptedModelServer(ModelServer):
    """An OpenAI-compatible chat endpoint on loopback (a test double) that answers by agent and question."""

    def __init__(self) -> None:
        self.by_prompt = {case.prompt: case for case in CASES}
        super().__init__(self.reply)

    def reply(self, agent: str, messages: list[dict]) -> Reply:
        user = user_text(messages)  # not a retry's
        question = re.search(r"^(?:Question|The user's question(?: \(for context\))?): (.+)$", user, re.M)
        case = self.by_prompt.get(question.group(1).strip(), WARM_UP)
        delay = PARALLEL_DELAY_S if agent in {"visualizer", "analyst"} else 0.0
        return Reply(self.text(agent, case, user), tag=case.id, latency_s=delay)

    def text(self, agent: str, case, user: str) -> str:
        fan_out = case.id in FAN_OUT
        sql = WRONG_SQL.get(case.id) or RIGHT_BUT_DIFFERENT_SQL.get(case.id) or next(iter(case.references), "")
        if agent == "planner":
            scope = WRONG_SCOPE.get(case.id, case.scope)
            return json.dumps({"scope": scope, "sql": sql if case.kind == "data" and scope == "data_question" else "",
                               "chart": "auto" if fan_out else "none", "insight": fan_out, "chart_title": "",
                               "answer_brief": "Bottom line first.", "plan_explainer": "I will query the data.",
                               "reason": "Scripted."})
        if agent == "manipulator":
            return json.dumps({"sql": sql})
        if agent == "visualizer":  # the first and last result columns, as "name (type)" lines
            columns = re.findall(r"^\s*(\w+) \(", user.split("<columns>")[-1].split("</columns>")[0], re.M)
            return json.dumps({"mark": "bar", "data": {"name": "result"}, "encoding": {
                "x": {"field": columns[0], "type": "nominal"}, "y": {"field": columns[-1], "type": "quantitative"}}})
        return {"analyst": "**Bottom line:** scripted.",
                "text_answer": DOCUMENT_TEXT.get(case.id, "Scripted.")}.get(agent, "unscripted agent")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One whole `python -m evaluation --json FILE` run against the scripted model."""
    model = ScriptedModelServer()
    report_path = tmp_path_factory.mktemp("eval") / "report.json"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LLM_DEFAULT_MODEL", "openai/gpt-4o-mini")  # a model LiteLLM has a price for
        env.setenv("LLM_DEFAULT_API_KEYS", "openai=sk-eval-scripted")
        env.setenv("LLM_API_BASE", model.url)
        code = cli.main(["--json", str(report_path), "--timeout", "60"])
    model.close()
    assert [case_id for case_id, *_ in model.calls[:1]] == ["warm-up"]
    return code, json.loads(report_path.read_text()), [call for call in model.calls if call[0] != "warm-up"]


def test_run_reports_every_case_and_exits_0(run):
    code, report, _ = run
    assert code == 0
    assert [case["id"] for case in report["cases"]] == [case.id for case in CASES]
    table = markdown(report)
    assert all(f"| {case.id} |" in table for case in CASES) and "| accuracy |" in table
    assert report["models_called"] == ["openai/gpt-4o-mini"]
    assert all(case["status"] == "succeeded" for case in report["cases"]), report["cases"]
    assert exit_code(report, 100.0) == 1


def test_run_tells_right_from_wrong_answers(run):
    _, report, _ = run
    wrong = {case["id"]: case["why_not"] for case in report["cases"] if not case["correct"]}
    assert set(wrong) == WRONG
    assert wrong["fu_only_north"] == "16 rows, expected 4 (and 1 other accepted shape(s))"
    assert wrong["capital"] == "scope small_talk, expected out_of_scope"
    assert "'25'" in wrong["doc_vacation"] and "column 1" in wrong["count_orders"]
    total = report["totals"]
    assert total["correct"] == len(CASES) - len(WRONG)
    assert total["accuracy_pct"] == round(100 * (len(CASES) - len(WRONG)) / len(CASES), 1)


def test_run_counts_calls_rounds_and_tokens_as_the_model_saw_them(run):
    _, report, calls = run
    for case in report["cases"]:
        seen = [(agent, start, end) for case_id, agent, start, end in calls if case_id == case["id"]]
        assert case["calls"] == len(seen), case
        fan_out = [window for window in seen if window[0] in {"visualizer", "analyst"}]
        overlapped = len(fan_out) == 2 and fan_out[0][1] < fan_out[1][2] and fan_out[1][1] < fan_out[0][2]
        assert case["rounds"] == len(seen) - overlapped, case
        assert (case["prompt_tokens"], case["completion_tokens"]) == (100 * len(seen), 20 * len(seen))
        assert case["cost_usd"] == pytest.approx(case["calls"] * report["cases"][0]["cost_usd"]
                                                 / report["cases"][0]["calls"])
    assert all(case["rounds"] < case["calls"] for case in report["cases"] if case["id"] in FAN_OUT)
    total = report["totals"]
    assert total["prompt_tokens"] == 100 * len(calls) and total["completion_tokens"] == 20 * len(calls)
    assert total["cost_usd"] > 0 and total["cost_usd"] == pytest.approx(sum(c["cost_usd"] for c in report["cases"]))
    assert total["mean_calls"] == round(len(calls) / len(CASES), 2)
    latencies = sorted(case["latency_s"] for case in report["cases"])
    assert total["p50_latency_s"] == latencies[len(latencies) // 2 - (len(latencies) % 2 == 0)] > 0
