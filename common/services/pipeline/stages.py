"""The pipeline's stages. Each reads the job, calls its agents, and returns a ``StageOutcome``: what to store
on the job, the LLM calls made, the stages to run next and those not needed, or the finished answer.

A full question costs the user two model rounds: ``plan`` (one planner call that classifies the question,
decides chart and insight, and writes the SQL), ``manipulate`` (runs that SQL; a model call only to repair a
query that failed), then ``visualize`` and ``compile`` side by side (the chart from a template when it is
obvious, else one visualizer call; the answer from one analyst call, streamed while it is written). Small talk
and out-of-scope questions end after the planner.

Stages never write the job themselves (the runner does, with compare-and-set), so a stage is a function
of the job: re-running it after a failure can never store a second outcome, and reuses the model replies
its earlier run was given (``reply_memo``) instead of paying for them again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from typing import Any

from common import errors
from common.auth import Tenant
from common.names import Domain
from common.ports import QuestionPorts
from common.services import domain_sql
from common.services.pipeline import domain_data, pg_tables, provenance
from common.services.pipeline.agent_call import AgentFailed, call_agent
from common.services.pipeline.answers import canned_answer, compile_answer
from common.services.pipeline.job import Answer, ChartRef, JobContext, Plan, QueryJob, Result
from common.services.pipeline.result_store import result_rows, store_rows

MANIPULATOR_ATTEMPTS = 3  # the planner's SQL, then at most two repairs by the manipulator
RESULT_SAMPLE_ROWS = 5
# After the result, the chart and the answer are made side by side; the job completes when both have ended.
FAN_OUT = ("visualize", "compile")
CHART_KINDS = ("bar", "line", "table", "auto")


@dataclasses.dataclass
class StageOutcome:
    outputs: dict[str, Any]  # QueryJob fields this stage sets
    calls: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    next_stages: list[str] = dataclasses.field(default_factory=list)
    skip: list[str] = dataclasses.field(default_factory=list)
    answer: Answer | None = None

    def apply(self, job: QueryJob) -> None:
        """Set this stage's outputs (and the answer, when it wrote one) on the job."""
        for name, value in self.outputs.items():
            setattr(job, name, value)
        if self.answer is not None:
            job.answer = self.answer


def _resolved_config(deps: QuestionPorts, tenant: Tenant, domain: Domain) -> dict[str, Any]:
    """The domain and user configuration layers, resolved once at plan time for every later stage."""
    from common.prompts import SYSTEM_DEFAULTS, load_configuration, resolve_configuration

    domain_config, user_config = load_configuration(deps.metadata, tenant, domain)
    config = resolve_configuration(SYSTEM_DEFAULTS, domain_config, user_config, None)
    return {"prompt_values": config.prompt_values(), "model_overrides": config.model_overrides()}


def plan(deps: QuestionPorts, tenant: Tenant, job: QueryJob) -> StageOutcome:
    """Classify the question, decide chart and insight, and write its SQL: one planner call (the first round)."""
    request, domain = job.request, Domain(job.domain)
    postgres = pg_tables.load_pg_tables(deps, tenant, job.query_id, request.pg_tokens,
                                        _domain_table_names(deps, tenant, domain)) if request.pg_tokens else []
    data = domain_data.load_domain(deps, tenant, domain, tuple(request.datasets), tuple(postgres))
    turns, previous = domain_data.recent_turns(deps, tenant, job.session_id)
    context = JobContext(tables=domain_data.tables_text(data, deps.settings.prompt_token_budget),
                         attachments=domain_data.attachments_text(data), turns=turns,
                         previous_result=domain_data.previous_result_text(previous),
                         versions=data.versions if data.tables else domain_data.documents_read(data),
                         documents=domain_data.documents_text(data) if not data.tables else "",
                         pg_tables=pg_tables.stored(postgres), config=_resolved_config(deps, tenant, domain))
    config = context.config
    if not data.tables:  # documents only: the original's text-only answer, in the compile stage
        return StageOutcome({"context": context, "plan": Plan(mode="documents", scope="data_question")},
                            next_stages=["compile"], skip=["manipulate", "visualize"])
    planner = call_agent(deps, tenant, job, "planner", {
        "question": job.prompt, "domain": domain, "max_rows": deps.settings.sql_max_rows,
        "recent_turns": turns, "previous_result": context.previous_result, "tables": context.tables,
        "attachments": context.attachments, **config["prompt_values"]},
        model_overrides=config["model_overrides"], check=_needs_sql_without(previous))
    decision = _apply_request(_decision(planner.value), job)
    if decision.scope != "data_question":
        return StageOutcome({"plan": decision}, planner.calls, skip=["manipulate", *FAN_OUT],
                            answer=canned_answer(decision.scope, job))
    outputs = {"context": context, "plan": decision, "plan_explainer": planner.value["plan_explainer"]}
    if decision.need_manipulator:
        return StageOutcome(outputs, planner.calls, ["manipulate"])
    outputs["result"] = _reused_result(previous)
    return StageOutcome(outputs, planner.calls, *_after_result(decision))


def _needs_sql_without(previous: dict[str, Any] | None) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The planner's reply check: a data question with no previous result to reuse must bring its SQL."""
    def check(reply: dict[str, Any]) -> dict[str, Any]:
        if reply["scope"] == "data_question" and not reply["sql"].strip() and previous is None:
            raise errors.BadRequest("'sql' is empty, but there is no previous result to reuse: write the query")
        return reply
    return check


def _decision(reply: dict[str, Any]) -> Plan:
    """The planner's reply (checked against its schema) as a plan."""
    chart = reply["chart"]
    return Plan(scope=reply["scope"], mode="tables", need_manipulator=bool(reply["sql"].strip()),
                need_visualizer=chart != "none", need_analyzer=reply["insight"],
                visual_hint=chart if chart in CHART_KINDS else "auto", reason=reply["reason"],
                tasks={"sql": reply["sql"].strip(), "chart_title": reply["chart_title"],
                       "answer_brief": reply["answer_brief"]})


def _after_calls(made: list[dict[str, Any]], step: Callable[[], Any]) -> Any:
    """Run ``step``; a failure also carries the calls this stage ``made`` before it, so usage counts them."""
    try:
        return step()
    except AgentFailed as exc:
        raise AgentFailed(exc.cause, made + exc.calls) from exc


def _domain_table_names(deps: QuestionPorts, tenant: Tenant, domain: Domain) -> set[str]:
    try:
        return {table.sql_name for table in domain_sql.domain_tables(deps, tenant, domain)}
    except errors.NotFound:
        return set()


def _apply_request(decision: Plan, job: QueryJob) -> Plan:
    """What the request says wins over the planner: its visual hint, and no insight when it asked for none."""
    if job.request.visual_hint:
        decision.visual_hint = job.request.visual_hint
        decision.need_visualizer = decision.scope == "data_question"
    if not job.request.include_insight:
        decision.need_analyzer = False
    return decision


def _after_result(decision: Plan) -> tuple[list[str], list[str]]:
    """Once the result is there: the answer always, the chart when wanted, side by side."""
    if decision.need_visualizer:
        return ["visualize", "compile"], ["manipulate"]
    return ["compile"], ["manipulate", "visualize"]


def _reused_result(previous: dict[str, Any]) -> Result:
    table = previous["table"]
    return Result(sql=previous["sql"], columns=table["columns"], rows=table["rows"], row_count=table["row_count"],
                  truncated=table.get("truncated", False), reused=True,
                  read=(previous.get("provenance") or {}).get("tables", []))  # what the reused result was read from


def manipulate(deps: QuestionPorts, tenant: Tenant, job: QueryJob) -> StageOutcome:
    """Run the planner's SQL; when it is refused or fails, have the manipulator repair it, at most twice."""
    attempts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    sql = job.plan.tasks["sql"]
    for attempt in range(1, MANIPULATOR_ATTEMPTS + 1):
        if attempt > 1:  # a repair: the only round this stage adds, and only after a failure
            reply = _after_calls(calls, lambda: call_agent(deps, tenant, job, "manipulator", {
                "task": job.plan_explainer or job.prompt, "question": job.prompt,
                "max_rows": deps.settings.sql_max_rows, "tables": job.context.tables,
                "previous_result": job.context.previous_result,
                "previous_attempts": json.dumps(attempts, ensure_ascii=False)}))
            calls += reply.calls
            sql = reply.value["sql"]
        try:
            ran = _run_sql(deps, tenant, job, sql)
            break
        except errors.BadRequest as exc:  # rejected or failing SQL goes to the manipulator
            attempts.append({"sql": sql, "error": exc.message})
            if attempt == MANIPULATOR_ATTEMPTS:
                failed = errors.UpstreamError(f"no working query after {attempt} attempts; last error: {exc.message}",
                                              code="SQL_FAILED", details={"attempts": attempts})
                raise AgentFailed(failed, calls) from exc
    result = Result(sql=ran["sql"], columns=ran["columns"], row_count=ran["row_count"], truncated=ran["truncated"],
                    elapsed_ms=ran["elapsed_ms"], tables=ran["tables"], engine=ran.get("engine", "duckdb"),
                    key=store_rows(deps.blobs, tenant, job.query_id, ran["rows"]), attempts=attempts,
                    read=provenance.describe_reads(deps, tenant, job, ran["tables"]))
    next_stages, skip = _after_result(job.plan)
    return StageOutcome({"result": result}, calls, next_stages, [s for s in skip if s != "manipulate"])


def _run_sql(deps: QuestionPorts, tenant: Tenant, job: QueryJob, sql: str) -> dict[str, Any]:
    """Run the SQL: on Postgres itself when it reads only one connection's tables, else DuckDB. Its ``tables``
    are those the SQL read (a CTE named like a table hides that table)."""
    from common.analysis.sql_policy import tables_read
    from common.services.pipeline.pushdown import pushdown_target, run_pushed_down

    domain, extra = Domain(job.domain), pg_tables.restored(job)
    if extra:
        checked, tables = domain_sql.check(deps, tenant, domain, sql, extra_tables=extra)
        target = pushdown_target(checked, extra, {table.sql_name for table in tables})
        if target is not None:
            return run_pushed_down(deps, tenant, checked, *target, limit=deps.settings.sql_max_rows)
    ran = domain_sql.query(deps, tenant, domain, sql, limit=deps.settings.sql_max_rows, extra_tables=extra)
    read = tables_read(ran["sql"])
    return {**ran, "tables": {name: table for name, table in ran["tables"].items() if name.lower() in read}}


def visualize(deps: QuestionPorts, tenant: Tenant, job: QueryJob) -> StageOutcome:
    """Draw the chart: from a template when the hint and the result's shape make it obvious, else the
    visualizer writes a Vega-Lite spec; bind the result, check, render and store it."""
    from common.charts import bind_and_validate, chart_kind
    from common.charts.templates import template_spec

    result, rows = job.result, result_rows(deps.blobs, job)
    title = job.plan.tasks.get("chart_title") or job.prompt[:100]

    def checked(spec: dict[str, Any]) -> dict[str, Any]:
        return bind_and_validate(spec, result.columns, rows, max_rows=deps.settings.sql_max_rows,
                                 max_pixels=deps.settings.chart_max_pixels)

    spec = _template_chart(template_spec(job.plan.visual_hint, result.columns, rows, title=title), checked)
    calls: list[dict[str, Any]] = []
    if spec is None:
        reply = call_agent(deps, tenant, job, "visualizer", {
            "task": f"A {job.plan.visual_hint} chart titled {title!r}.", "question": job.prompt,
            "visual_hint": job.plan.visual_hint,
            "answer_settings": job.context.config["prompt_values"]["answer_settings"],
            "row_count": result.row_count,
            "result_columns": "\n".join(f"{c['name']} ({c['dtype']})" for c in result.columns),
            "result_sample": json.dumps(rows[:RESULT_SAMPLE_ROWS], ensure_ascii=False, default=str)[:2000]},
            check=checked)
        spec, calls = reply.value, reply.calls
    chart = _after_calls(calls, lambda: deps.charts.save(
        tenant, spec=spec, kind=chart_kind(spec), query_id=job.query_id, session_id=job.session_id,
        domain=job.domain, title=_title_of(spec, title)[:200], chart_id=_chart_id(job.query_id)))
    return StageOutcome({"chart": ChartRef(chart_id=chart.chart_id, kind=chart.kind, title=chart.title)}, calls)


def _template_chart(spec: dict[str, Any] | None,
                    checked: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any] | None:
    """The template's spec, bound and checked; None (the visualizer designs it) if the policy refuses it."""
    if spec is None:
        return None
    try:
        return checked(spec)
    except errors.BadRequest:
        return None


def _title_of(spec: dict[str, Any], default: str) -> str:
    title = spec.get("title")
    text = title.get("text") if isinstance(title, dict) else title
    return text if isinstance(text, str) and text.strip() else default


def _chart_id(query_id: str) -> str:
    # Derived from the query, so a retried stage finds the chart it already saved instead of a second one.
    return "c" + hashlib.sha256(query_id.encode()).hexdigest()[:32]


def compile_stage(deps: QuestionPorts, tenant: Tenant, job: QueryJob) -> StageOutcome:
    """Write the answer (the analyst, or the documents-only answer), streamed while it is written."""
    answer, calls = compile_answer(deps, tenant, job)
    return StageOutcome({}, calls, answer=answer)


Stage = Callable[[QuestionPorts, Tenant, QueryJob], StageOutcome]
STAGES: dict[str, Stage] = {"plan": plan, "manipulate": manipulate, "visualize": visualize,
                            "compile": compile_stage}
