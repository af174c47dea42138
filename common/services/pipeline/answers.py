"""The final answer: written by the compiler (or from documents alone), checked, rendered, assembled."""

from __future__ import annotations

from typing import Any

from common.analysis.answer import markdown_to_html, unverified_numbers
from common.auth import Tenant
from common.ports import QuestionPorts
from common.services.pipeline.agent_call import call_agent
from common.services.pipeline.job import Answer, ChartRef, QueryJob, Result
from common.services.pipeline.result_store import result_rows

TABLE_ROWS_IN_ANSWER = 100

CANNED = {
    "small_talk": "Hello! Ask me about the data in this domain: totals, trends, comparisons, drivers. I answer "
                  "with the numbers, a chart and the SQL behind them.",
    "out_of_scope": "Sorry, your question is not in the context of the data in this domain. Ask about the "
                    "uploaded datasets, for example a total, a trend or a comparison.",
}


def canned_answer(scope: str, job: QueryJob) -> Answer:
    """The reply to small talk or an out-of-scope question: no data, no further LLM call."""
    text = CANNED.get(scope, CANNED["out_of_scope"])
    return Answer(scope=scope, answer_markdown=text, answer_html=markdown_to_html(text),
                  provenance={"datasets": {}, "model": job.request.model_id})


def compile_answer(deps: QuestionPorts, tenant: Tenant, job: QueryJob) -> tuple[Answer, list[dict[str, Any]]]:
    """Ask the compiler (or the documents-only agent) for the answer and assemble what the API returns."""
    from common.analysis.result_summary import summarize_result

    context, config = job.context, job.context.config
    if job.plan.mode == "documents":
        reply = call_agent(deps, tenant, job, "text_answer", {
            "question": job.prompt, "domain": job.domain, "recent_turns": context.turns,
            "documents": context.documents, **config["prompt_values"]}, model_overrides=config["model_overrides"])
        markdown, rows, result = reply.value, [], None
    else:
        result = job.result
        rows = result_rows(deps.blobs, job)
        chart = job.chart
        reply = call_agent(deps, tenant, job, "compiler", {
            "question": job.prompt, "domain": job.domain, "instruction": job.plan.tasks["compiler_instruction"],
            "datasets": ", ".join(sorted(context.versions)) or "(none)",
            "result_summary": summarize_result(result.columns, rows, row_count=result.row_count,
                                               truncated=result.truncated) if result else "(no result)",
            "analysis": job.analysis or "(not run)",
            "chart": f"{chart.kind} chart titled {chart.title!r}" if chart else "(no chart)",
            **config["prompt_values"]}, model_overrides=config["model_overrides"])
        markdown = reply.value
    answer = Answer(
        scope="data_question", answer_markdown=markdown, answer_html=markdown_to_html(markdown),
        chart=_chart_view(deps, tenant, job.chart), table=_table_view(result, rows),
        sql=result.sql if result else None, plan_explainer=job.plan_explainer,
        unverified_numbers=unverified_numbers(markdown, rows) if result else [],
        provenance={"datasets": context.versions, "model": job.request.model_id,
                    "prompt_versions": _prompt_versions(deps, job)})
    return answer, reply.calls


_AGENTS_OF_STAGE = {"plan": ("router", "orchestrator"), "manipulate": ("manipulator",),
                    "visualize": ("visualizer",), "analyze": ("analyzer",)}


def _prompt_versions(deps: QuestionPorts, job: QueryJob) -> dict[str, int]:
    """The version of every prompt that shaped this answer."""
    if job.plan.mode == "documents":
        return {"text_answer": deps.prompts.get("text_answer").version}
    agents = [agent for stage, names in _AGENTS_OF_STAGE.items() if job.stages[stage].state in {"done", "running"}
              for agent in names]
    return {agent: deps.prompts.get(agent).version for agent in [*agents, "compiler"]}


def chart_view(deps: QuestionPorts, tenant: Tenant, chart: ChartRef | dict[str, Any]) -> dict[str, Any]:
    """A chart as an answer shows it, with URLs signed now (signed URLs expire: sign them on every read)."""
    chart_id = chart.chart_id if isinstance(chart, ChartRef) else chart["chart_id"]
    fields = vars(chart) if isinstance(chart, ChartRef) else chart
    return {**fields, "html_url": deps.charts.url(tenant, chart_id, "html"),
            "png_url": deps.charts.url(tenant, chart_id, "png")}


def _chart_view(deps: QuestionPorts, tenant: Tenant, chart: ChartRef | None) -> dict[str, Any] | None:
    if not chart:
        return None
    return {**chart_view(deps, tenant, chart), "spec": deps.charts.spec(tenant, chart.chart_id)}


def _table_view(result: Result | None, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not result:
        return None
    return {"columns": result.columns, "rows": rows[:TABLE_ROWS_IN_ANSWER], "row_count": result.row_count,
            "truncated": result.truncated or len(rows) > TABLE_ROWS_IN_ANSWER}
