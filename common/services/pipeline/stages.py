"""The pipeline's stages. Each reads the job, calls its agents, and returns a ``StageOutcome``: what to store
on the job, the LLM calls made, the stages to run next and those not needed, or the finished answer.

Stages never write the job themselves (the runner does, with compare-and-set), so a stage is a function
of the job: re-running it after a crash repeats its LLM calls but can never store a second outcome.
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
from common.services.pipeline import domain_data, pg_tables
from common.services.pipeline.agent_call import AgentFailed, call_agent
from common.services.pipeline.answers import canned_answer, compile_answer
from common.services.pipeline.job import Answer, ChartRef, JobContext, Plan, QueryJob, Result
from common.services.pipeline.result_store import result_rows, store_rows

MANIPULATOR_ATTEMPTS = 3
ROUTER_BUDGET_SHARE = 4
RESULT_SAMPLE_ROWS = 5
FAN_OUT = ("visualize", "analyze")


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
    """Decide the scope and the agents (router), then write each agent's task (orchestrator)."""
    request, domain = job.request, Domain(job.domain)
    postgres = pg_tables.load_pg_tables(deps, tenant, job.query_id, request.pg_tokens,
                                        _domain_table_names(deps, tenant, domain)) if request.pg_tokens else []
    data = domain_data.load_domain(deps, tenant, domain, tuple(request.datasets), tuple(postgres))
    turns, previous = domain_data.recent_turns(deps, tenant, job.session_id)
    context = JobContext(tables=domain_data.tables_text(data, deps.settings.prompt_token_budget),
                         attachments=domain_data.attachments_text(data), turns=turns,
                         previous_result=domain_data.previous_result_text(previous), versions=data.versions,
                         documents=domain_data.documents_text(data) if not data.tables else "",
                         pg_tables=pg_tables.stored(postgres), config=_resolved_config(deps, tenant, domain))
    config = context.config
    if not data.tables:  # documents only: the original's text-only answer, in the compile stage
        return StageOutcome({"context": context, "plan": Plan(mode="documents", scope="data_question")},
                            next_stages=["compile"], skip=["manipulate", *FAN_OUT])
    common = {"question": job.prompt, "domain": domain, "recent_turns": turns,
              "previous_result": context.previous_result, "dataset_profiles": context.tables,
              "attachments": context.attachments}
    # The router only decides scope and agents: names and types with a few statistics are enough for it.
    brief = domain_data.tables_text(data, deps.settings.prompt_token_budget // ROUTER_BUDGET_SHARE)
    router = call_agent(deps, tenant, job, "router", {**common, "dataset_profiles": brief})
    decision = _apply_request(_decision(router.value), job, has_previous=previous is not None)
    if decision.scope != "data_question":
        return StageOutcome({"plan": decision}, router.calls, answer=canned_answer(decision.scope, job))
    orchestrator = _after_calls(router.calls, lambda: call_agent(
        deps, tenant, job, "orchestrator",
        {**common, "router_plan": _router_fields(decision), **config["prompt_values"]},
        model_overrides=config["model_overrides"]))
    decision.mode, decision.tasks = "tables", orchestrator.value
    outputs = {"context": context, "plan": decision, "plan_explainer": decision.tasks["plan_explainer"]}
    calls = router.calls + orchestrator.calls
    if decision.need_manipulator:
        return StageOutcome(outputs, calls, ["manipulate"])
    outputs["result"] = _reused_result(previous)
    return StageOutcome(outputs, calls, *_after_result(decision))


_ROUTER_FIELDS = ("scope", "need_manipulator", "need_visualizer", "need_analyzer", "visual_hint", "reason")


def _decision(reply: dict[str, Any]) -> Plan:
    """The router's reply (checked against its schema) as a plan."""
    return Plan(**{name: reply[name] for name in _ROUTER_FIELDS if name in reply})


def _router_fields(decision: Plan) -> dict[str, Any]:
    return {name: getattr(decision, name) for name in _ROUTER_FIELDS}


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


def _apply_request(decision: Plan, job: QueryJob, *, has_previous: bool) -> Plan:
    """What the request says wins over the router: its visual hint, and no insight when it asked for none."""
    if job.request.visual_hint:
        decision.visual_hint = job.request.visual_hint
    if not job.request.include_insight:
        decision.need_analyzer = False
    if not has_previous:
        decision.need_manipulator = True  # nothing to reuse: the data must be queried
    return decision


def _after_result(decision: Plan) -> tuple[list[str], list[str]]:
    wanted = [stage for stage, needed in (("visualize", decision.need_visualizer),
                                          ("analyze", decision.need_analyzer)) if needed]
    skipped = [stage for stage in FAN_OUT if stage not in wanted]
    return (wanted or ["compile"]), ["manipulate", *skipped]


def _reused_result(previous: dict[str, Any]) -> Result:
    table = previous["table"]
    return Result(sql=previous["sql"], columns=table["columns"], rows=table["rows"], row_count=table["row_count"],
                  truncated=table.get("truncated", False), reused=True)


def manipulate(deps: QuestionPorts, tenant: Tenant, job: QueryJob) -> StageOutcome:
    """Have the manipulator write SQL, check and run it; send errors back to it, at most twice."""
    attempts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for attempt in range(1, MANIPULATOR_ATTEMPTS + 1):
        reply = _after_calls(calls, lambda: call_agent(deps, tenant, job, "manipulator", {
            "task": job.plan.tasks["manipulator_prompt"] or job.prompt, "question": job.prompt,
            "max_rows": deps.settings.sql_max_rows, "tables": job.context.tables,
            "previous_result": job.context.previous_result,
            "previous_attempts": json.dumps(attempts, ensure_ascii=False) if attempts else "(none)"}))
        calls += reply.calls
        try:
            ran = _run_sql(deps, tenant, job, reply.value["sql"])
            break
        except errors.BadRequest as exc:  # rejected or failing SQL goes back to the manipulator
            attempts.append({"sql": reply.value["sql"], "error": exc.message})
            if attempt == MANIPULATOR_ATTEMPTS:
                failed = errors.UpstreamError(f"no working query after {attempt} attempts; last error: {exc.message}",
                                              code="SQL_FAILED", details={"attempts": attempts})
                raise AgentFailed(failed, calls) from exc
    result = Result(sql=ran["sql"], columns=ran["columns"], row_count=ran["row_count"], truncated=ran["truncated"],
                    elapsed_ms=ran["elapsed_ms"], tables=ran["tables"], engine=ran.get("engine", "duckdb"),
                    key=store_rows(deps.blobs, tenant, job.query_id, ran["rows"]), attempts=attempts)
    next_stages, skip = _after_result(job.plan)
    return StageOutcome({"result": result}, calls, next_stages, [s for s in skip if s != "manipulate"])


def _run_sql(deps: QuestionPorts, tenant: Tenant, job: QueryJob, sql: str) -> dict[str, Any]:
    """Run the manipulator's SQL: on Postgres itself when it reads only one connection's tables, else DuckDB."""
    from common.services.pipeline.pushdown import pushdown_target, run_pushed_down

    domain, extra = Domain(job.domain), pg_tables.restored(job)
    if extra:
        checked, tables = domain_sql.check(deps, tenant, domain, sql, extra_tables=extra)
        target = pushdown_target(checked, extra, {table.sql_name for table in tables})
        if target is not None:
            return run_pushed_down(deps, tenant, checked, *target, limit=deps.settings.sql_max_rows)
    return domain_sql.query(deps, tenant, domain, sql, limit=deps.settings.sql_max_rows, extra_tables=extra)


def visualize(deps: QuestionPorts, tenant: Tenant, job: QueryJob) -> StageOutcome:
    """Have the visualizer write a Vega-Lite spec; bind the result, check, render and store the chart."""
    from common.charts import bind_and_validate, chart_kind

    result, rows = job.result, result_rows(deps.blobs, job)
    reply = call_agent(deps, tenant, job, "visualizer", {
        "task": job.plan.tasks["visualizer_prompt"] or job.prompt, "question": job.prompt,
        "visual_hint": job.plan.visual_hint,
        "answer_settings": job.context.config["prompt_values"]["answer_settings"], "row_count": result.row_count,
        "result_columns": "\n".join(f"{c['name']} ({c['dtype']})" for c in result.columns),
        "result_sample": json.dumps(rows[:RESULT_SAMPLE_ROWS], ensure_ascii=False, default=str)[:2000]},
        check=lambda spec: bind_and_validate(spec, result.columns, rows, max_rows=deps.settings.sql_max_rows,
                                             max_pixels=deps.settings.chart_max_pixels))
    spec = reply.value
    title = spec.get("title") if isinstance(spec.get("title"), str) else job.prompt[:100]
    chart = _after_calls(reply.calls, lambda: deps.charts.save(
        tenant, spec=spec, kind=chart_kind(spec), query_id=job.query_id, session_id=job.session_id,
        domain=job.domain, title=title[:200], chart_id=_chart_id(job.query_id)))
    return StageOutcome({"chart": ChartRef(chart_id=chart.chart_id, kind=chart.kind, title=chart.title)},
                        reply.calls, ["compile"])


def _chart_id(query_id: str) -> str:
    # Derived from the query, so a retried stage finds the chart it already saved instead of a second one.
    return "c" + hashlib.sha256(query_id.encode()).hexdigest()[:32]


def analyze(deps: QuestionPorts, tenant: Tenant, job: QueryJob) -> StageOutcome:
    """Have the analyzer write quantified insights from a bounded summary of the result."""
    from common.analysis.result_summary import summarize_result

    result, rows = job.result, result_rows(deps.blobs, job)
    config = job.context.config
    reply = call_agent(deps, tenant, job, "analyzer", {
        "task": job.plan.tasks["analyzer_prompt"] or job.prompt, "question": job.prompt,
        "answer_settings": config["prompt_values"]["answer_settings"], "sql": result.sql,
        "result_summary": summarize_result(result.columns, rows, row_count=result.row_count,
                                           truncated=result.truncated)},
        model_overrides=config["model_overrides"])
    return StageOutcome({"analysis": reply.value}, reply.calls, ["compile"])


def compile_stage(deps: QuestionPorts, tenant: Tenant, job: QueryJob) -> StageOutcome:
    """Write the answer (compiler, or the documents-only answer), check its numbers, render it."""
    answer, calls = compile_answer(deps, tenant, job)
    return StageOutcome({}, calls, answer=answer)


Stage = Callable[[QuestionPorts, Tenant, QueryJob], StageOutcome]
STAGES: dict[str, Stage] = {"plan": plan, "manipulate": manipulate, "visualize": visualize, "analyze": analyze,
                            "compile": compile_stage}
