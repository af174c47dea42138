"""The final answer: written by the compiler (or from documents alone), checked, rendered, assembled."""

from __future__ import annotations

from typing import Any

from common.analysis.answer import markdown_to_html, unverified_numbers
from common.auth import Tenant
from common.services.pipeline.agent_call import call_agent

TABLE_ROWS_IN_ANSWER = 100

CANNED = {
    "small_talk": "Hello! Ask me about the data in this domain: totals, trends, comparisons, drivers. I answer "
                  "with the numbers, a chart and the SQL behind them.",
    "out_of_scope": "Sorry, your question is not in the context of the data in this domain. Ask about the "
                    "uploaded datasets, for example a total, a trend or a comparison.",
}


def canned_answer(scope: str, job: dict[str, Any]) -> dict[str, Any]:
    """The reply to small talk or an out-of-scope question: no data, no further LLM call."""
    text = CANNED.get(scope, CANNED["out_of_scope"])
    return {"scope": scope, "answer_markdown": text, "answer_html": markdown_to_html(text), "chart": None,
            "table": None, "sql": None, "plan_explainer": "", "unverified_numbers": [],
            "provenance": {"datasets": {}, "model": job["request"]["model_id"]}}


def compile_answer(deps: Any, tenant: Tenant, job: dict[str, Any], config: dict[str, Any]) -> tuple[dict[str, Any],
                                                                                        list[dict[str, Any]]]:
    """Ask the compiler (or the documents-only agent) for the answer and assemble what the API returns."""
    from common.analysis.result_summary import summarize_result
    from common.services.pipeline.stages import result_rows

    context = job["context"]
    if job["plan"]["mode"] == "documents":
        reply = call_agent(deps, tenant.user_id, job, "text_answer", {
            "question": job["prompt"], "domain": job["domain"], "recent_turns": context["turns"],
            "documents": context["documents"], **config["prompt_values"]}, model_overrides=config["model_overrides"])
        markdown, rows, result = reply.value, [], None
    else:
        result = job.get("result")
        rows = result_rows(deps, job) if result else []
        chart = job.get("chart")
        reply = call_agent(deps, tenant.user_id, job, "compiler", {
            "question": job["prompt"], "domain": job["domain"],
            "instruction": job["plan"]["tasks"]["compiler_instruction"],
            "datasets": ", ".join(sorted(context["versions"])) or "(none)",
            "result_summary": summarize_result(result["columns"], rows, row_count=result["row_count"],
                                               truncated=result["truncated"]) if result else "(no result)",
            "analysis": job.get("analysis") or "(not run)",
            "chart": f"{chart['kind']} chart titled {chart['title']!r}" if chart else "(no chart)",
            **config["prompt_values"]}, model_overrides=config["model_overrides"])
        markdown = reply.value
    answer = {
        "scope": "data_question", "answer_markdown": markdown, "answer_html": markdown_to_html(markdown),
        "chart": _chart_view(deps, tenant, job.get("chart")), "table": _table_view(result, rows),
        "sql": result["sql"] if result else None, "plan_explainer": job.get("plan_explainer", ""),
        "unverified_numbers": unverified_numbers(markdown, rows) if result else [],
        "provenance": {"datasets": context["versions"], "model": job["request"]["model_id"],
                       "prompt_versions": _prompt_versions(deps, job)},
    }
    return answer, reply.calls


_AGENTS_OF_STAGE = {"plan": ("router", "orchestrator"), "manipulate": ("manipulator",),
                    "visualize": ("visualizer",), "analyze": ("analyzer",)}


def _prompt_versions(deps: Any, job: dict[str, Any]) -> dict[str, int]:
    """The version of every prompt that shaped this answer."""
    if job["plan"]["mode"] == "documents":
        return {"text_answer": deps.prompts.get("text_answer").version}
    agents = [agent for stage, names in _AGENTS_OF_STAGE.items() if job["stages"][stage]["state"] in {"done", "running"}
              for agent in names]
    return {agent: deps.prompts.get(agent).version for agent in [*agents, "compiler"]}


def _chart_view(deps: Any, tenant: Tenant, chart: dict[str, Any] | None) -> dict[str, Any] | None:
    if not chart:
        return None
    spec = deps.charts.spec(tenant, chart["chart_id"])
    return {**chart, "spec": spec, "html_url": deps.charts.url(tenant, chart["chart_id"], "html"),
            "png_url": deps.charts.url(tenant, chart["chart_id"], "png")}


def _table_view(result: dict[str, Any] | None, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not result:
        return None
    return {"columns": result["columns"], "rows": rows[:TABLE_ROWS_IN_ANSWER], "row_count": result["row_count"],
            "truncated": result["truncated"] or len(rows) > TABLE_ROWS_IN_ANSWER}
