"""The final answer: written by the analyst (or from documents alone) while the user watches, checked,
rendered, and completed with the chart drawn beside it."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from common import errors
from common.analysis.answer import markdown_to_html, unverified_numbers
from common.analysis.unverified_marks import mark_markdown
from common.auth import Tenant
from common.ports import QuestionPorts
from common.services.pipeline.agent_call import call_agent
from common.services.pipeline.answer_stream import AnswerStream
from common.services.pipeline.job import Answer, ChartRef, QueryJob, Result
from common.services.pipeline.provenance import answer_provenance, reads_text
from common.services.pipeline.result_store import result_rows

log = logging.getLogger("convoinsight.pipeline")

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
                  provenance={"datasets": {}, "tables": [], "model": job.request.model_id})


def compile_answer(deps: QuestionPorts, tenant: Tenant, job: QueryJob) -> tuple[Answer, list[dict[str, Any]]]:
    """Ask the analyst (or the documents-only agent) for the answer, streaming its text as it is written, and
    assemble what the API returns; the chart and the prompt versions are added when the job completes."""
    from common.analysis.result_summary import summarize_result

    context, config = job.context, job.context.config
    stream = AnswerStream(deps.cache, tenant, job.query_id)
    if job.plan.mode == "documents":
        reply = call_agent(deps, tenant, job, "text_answer", {
            "question": job.prompt, "domain": job.domain, "recent_turns": context.turns,
            "documents": context.documents, **config["prompt_values"]}, model_overrides=config["model_overrides"],
            sink=stream)
        markdown, rows, result = reply.value, [], None
    else:
        result = job.result
        rows = result_rows(deps.blobs, job)
        reply = call_agent(deps, tenant, job, "analyst", {
            "question": job.prompt, "depth": "full" if job.plan.need_analyzer else "brief",
            "brief": job.plan.tasks.get("answer_brief") or "(none)",
            "datasets": reads_text(result),
            "chart": _planned_chart(job), "sql": result.sql,
            "result_summary": summarize_result(result.columns, rows, row_count=result.row_count,
                                               truncated=result.truncated),
            **config["prompt_values"]}, model_overrides=config["model_overrides"], sink=stream)
        markdown = reply.value
    stream.flush()
    unverified = unverified_numbers(markdown, rows) if result else []
    markdown = mark_markdown(markdown, unverified)  # shown where they stand, in the Markdown, HTML and PDF alike
    answer = Answer(
        scope="data_question", answer_markdown=markdown, answer_html=markdown_to_html(markdown, unverified=unverified),
        table=_table_view(result, rows), sql=result.sql if result else None, plan_explainer=job.plan_explainer,
        unverified_numbers=unverified,
        provenance=answer_provenance(job))
    return answer, reply.calls


def _planned_chart(job: QueryJob) -> str:
    """The chart being drawn beside the answer (it is not finished yet: the two run at the same time)."""
    if not job.plan.need_visualizer:
        return "(no chart)"
    return f"a {job.plan.visual_hint} chart titled {job.plan.tasks.get('chart_title') or job.prompt[:100]!r}"


def completed_answer(deps: QuestionPorts, tenant: Tenant, job: QueryJob) -> Answer:
    """The stored answer with what ended beside it: the chart, and the version of every prompt that shaped it."""
    answer = dataclasses.replace(job.answer)
    if job.chart is not None and answer.chart is None:
        answer.chart = _chart_view(deps, tenant, job.chart)
    if answer.scope == "data_question" and "prompt_versions" not in answer.provenance:
        agents = sorted({call["agent"] for call in job.usage.calls if call.get("agent")})
        answer.provenance = {**answer.provenance,
                             "prompt_versions": {agent: deps.prompts.get(agent).version for agent in agents}}
    return answer


def chart_view(deps: QuestionPorts, tenant: Tenant, chart: ChartRef | dict[str, Any]) -> dict[str, Any]:
    """A chart as an answer shows it, with URLs signed now (signed URLs expire: sign them on every read)."""
    chart_id = chart.chart_id if isinstance(chart, ChartRef) else chart["chart_id"]
    fields = vars(chart) if isinstance(chart, ChartRef) else chart
    return {**fields, "html_url": _signed_url(deps, tenant, chart_id, "html"),
            "png_url": _signed_url(deps, tenant, chart_id, "png")}


def _signed_url(deps: QuestionPorts, tenant: Tenant, chart_id: str, fmt: str) -> str | None:
    """The chart's URL, or None when no URL can be signed: a missing link never fails an answer (the chart's
    spec is in it, and ``GET /api/v1/charts/{id}/url`` can be asked again later)."""
    global _warned_unsigned
    try:
        return deps.charts.url(tenant, chart_id, fmt)
    except (errors.ConfigurationError, errors.ServiceUnavailable, errors.UpstreamError) as exc:
        if not _warned_unsigned:
            _warned_unsigned = True
            log.warning("answers carry no chart URLs: none could be signed (%s)", exc.message)
        return None


_warned_unsigned = False  # once per instance: the cause is the configuration, not the question


def _chart_view(deps: QuestionPorts, tenant: Tenant, chart: ChartRef | None) -> dict[str, Any] | None:
    if not chart:
        return None
    return {**chart_view(deps, tenant, chart), "spec": deps.charts.spec(tenant, chart.chart_id)}


def _table_view(result: Result | None, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not result:
        return None
    return {"columns": result.columns, "rows": rows[:TABLE_ROWS_IN_ANSWER], "row_count": result.row_count,
            "truncated": result.truncated or len(rows) > TABLE_ROWS_IN_ANSWER}
