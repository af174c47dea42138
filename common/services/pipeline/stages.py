"""The pipeline's stages. Each reads the job, calls its agents, and returns a ``StageOutcome``: what to store
on the job, the LLM calls made, the stages to run next and those not needed, or the finished answer.

Stages never write the job themselves (the runner does, with compare-and-set), so a stage is a function
of the job: re-running it after a crash repeats its LLM calls but can never store a second outcome.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from common import errors
from common.auth import Tenant
from common.services import domain_sql
from common.services.pipeline import domain_data, pg_tables
from common.services.pipeline.agent_call import call_agent
from common.services.pipeline.answers import canned_answer, compile_answer

MANIPULATOR_ATTEMPTS = 3
ROUTER_BUDGET_SHARE = 4
RESULT_SAMPLE_ROWS = 5


@dataclasses.dataclass
class StageOutcome:
    outputs: dict[str, Any]
    calls: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    next_stages: list[str] = dataclasses.field(default_factory=list)
    skip: list[str] = dataclasses.field(default_factory=list)
    answer: dict[str, Any] | None = None


def _resolved_config(deps: Any, tenant: Tenant, domain: str) -> dict[str, Any]:
    """The domain and user configuration layers, resolved once at plan time for every later stage."""
    from common.prompts import SYSTEM_DEFAULTS, load_configuration, resolve_configuration

    domain_config, user_config = load_configuration(deps.metadata, tenant.user_id, domain)
    config = resolve_configuration(SYSTEM_DEFAULTS, domain_config, user_config, None)
    return {"prompt_values": config.prompt_values(), "model_overrides": config.model_overrides()}


def plan(deps: Any, tenant: Tenant, job: dict[str, Any]) -> StageOutcome:
    """Decide the scope and the agents (router), then write each agent's task (orchestrator)."""
    request, domain = job["request"], job["domain"]
    postgres = pg_tables.load_pg_tables(deps, tenant, job["query_id"], request["pg_tokens"],
                                        _domain_table_names(deps, tenant, domain)) if request.get("pg_tokens") else []
    data = domain_data.load_domain(deps, tenant, domain, tuple(request["datasets"]), tuple(postgres))
    turns, previous = domain_data.recent_turns(deps, tenant, job["session_id"])
    context = {"tables": domain_data.tables_text(data, deps.settings.prompt_token_budget),
               "attachments": domain_data.attachments_text(data), "turns": turns,
               "previous_result": domain_data.previous_result_text(previous), "versions": data.versions,
               "documents": domain_data.documents_text(data) if not data.tables else "",
               "pg_tables": pg_tables.stored(postgres), "config": _resolved_config(deps, tenant, domain)}
    config = context["config"]
    if not data.tables:  # documents only: the original's text-only answer, in the compile stage
        return StageOutcome({"context": context, "plan": {"mode": "documents", "scope": "data_question"}},
                            next_stages=["compile"], skip=["manipulate", "visualize", "analyze"])
    common = {"question": job["prompt"], "domain": domain, "recent_turns": turns,
              "previous_result": context["previous_result"], "dataset_profiles": context["tables"],
              "attachments": context["attachments"]}
    # The router only decides scope and agents: names and types with a few statistics are enough for it.
    brief = domain_data.tables_text(data, deps.settings.prompt_token_budget // ROUTER_BUDGET_SHARE)
    router = call_agent(deps, tenant.user_id, job, "router", {**common, "dataset_profiles": brief})
    decision = _apply_request(dict(router.value), request, has_previous=previous is not None)
    if decision["scope"] != "data_question":
        answer = canned_answer(decision["scope"], job)
        return StageOutcome({"plan": decision}, router.calls, answer=answer)
    orchestrator = call_agent(deps, tenant.user_id, job, "orchestrator",
                              {**common, "router_plan": decision, **config["prompt_values"]},
                              model_overrides=config["model_overrides"])
    tasks = orchestrator.value
    outputs = {"context": context, "plan": {**decision, "mode": "tables", "tasks": tasks},
               "plan_explainer": tasks["plan_explainer"]}
    if decision["need_manipulator"]:
        return StageOutcome(outputs, router.calls + orchestrator.calls, ["manipulate"])
    outputs["result"] = _reused_result(previous)
    return StageOutcome(outputs, router.calls + orchestrator.calls, *_after_result(decision))


def _domain_table_names(deps: Any, tenant: Tenant, domain: str) -> set[str]:
    try:
        return {table.sql_name for table in domain_sql.domain_tables(deps.datasets, tenant, domain)}
    except errors.NotFound:
        return set()


def _apply_request(decision: dict[str, Any], request: dict[str, Any], *, has_previous: bool) -> dict[str, Any]:
    """What the request says wins over the router: its visual hint, and no insight when it asked for none."""
    if request.get("visual_hint"):
        decision["visual_hint"] = request["visual_hint"]
    if not request.get("include_insight", True):
        decision["need_analyzer"] = False
    if not has_previous:
        decision["need_manipulator"] = True  # nothing to reuse: the data must be queried
    return decision


def _after_result(decision: dict[str, Any]) -> tuple[list[str], list[str]]:
    wanted = [stage for stage, flag in (("visualize", "need_visualizer"), ("analyze", "need_analyzer"))
              if decision.get(flag)]
    skipped = [stage for stage in ("visualize", "analyze") if stage not in wanted]
    return (wanted or ["compile"]), ["manipulate", *skipped]


def _reused_result(previous: dict[str, Any]) -> dict[str, Any]:
    table = previous["table"]
    return {"sql": previous["sql"], "columns": table["columns"], "rows": table["rows"],
            "row_count": table["row_count"], "truncated": table.get("truncated", False), "reused": True}


def manipulate(deps: Any, tenant: Tenant, job: dict[str, Any]) -> StageOutcome:
    """Have the manipulator write SQL, check and run it; send errors back to it, at most twice."""
    task, attempts, calls = job["plan"]["tasks"], [], []
    for attempt in range(1, MANIPULATOR_ATTEMPTS + 1):
        reply = call_agent(deps, tenant.user_id, job, "manipulator", {
            "task": task["manipulator_prompt"] or job["prompt"], "question": job["prompt"],
            "max_rows": deps.settings.sql_max_rows, "tables": job["context"]["tables"],
            "previous_result": job["context"]["previous_result"],
            "previous_attempts": json.dumps(attempts, ensure_ascii=False) if attempts else "(none)"})
        calls += reply.calls
        try:
            result = _run_sql(deps, tenant, job, reply.value["sql"])
            break
        except errors.BadRequest as exc:  # rejected or failing SQL goes back to the manipulator
            attempts.append({"sql": reply.value["sql"], "error": exc.message})
            if attempt == MANIPULATOR_ATTEMPTS:
                exc.calls = calls
                raise errors.UpstreamError(f"no working query after {attempt} attempts; last error: {exc.message}",
                                           code="SQL_FAILED", details={"attempts": attempts}) from exc
    key = deps.result_key(tenant, job["query_id"])
    deps.blobs.put(key, json.dumps(result["rows"], ensure_ascii=False).encode("utf-8"),
                   content_type="application/json")
    stored = {k: result[k] for k in ("sql", "columns", "row_count", "truncated", "elapsed_ms", "tables")}
    stored["engine"] = result.get("engine", "duckdb")
    next_stages, skip = _after_result(job["plan"])
    return StageOutcome({"result": {**stored, "key": key, "attempts": attempts}}, calls, next_stages,
                        [s for s in skip if s != "manipulate"])


def _run_sql(deps: Any, tenant: Tenant, job: dict[str, Any], sql: str) -> dict[str, Any]:
    """Run the manipulator's SQL: on Postgres itself when it reads only one connection's tables, else DuckDB."""
    from common.services.pipeline.pushdown import pushdown_target, run_pushed_down

    extra = pg_tables.restored(job)
    if extra:
        checked, tables = domain_sql.check(deps.datasets, tenant, job["domain"], sql, extra_tables=extra)
        target = pushdown_target(checked, extra, {table.sql_name for table in tables})
        if target is not None:
            return run_pushed_down(deps, tenant, checked, *target, limit=deps.settings.sql_max_rows)
    return domain_sql.query(deps.datasets, tenant, job["domain"], sql, limit=deps.settings.sql_max_rows,
                            extra_tables=extra)


def result_rows(deps: Any, job: dict[str, Any]) -> list[dict[str, Any]]:
    """The result table's rows (stored by manipulate, or carried over from the previous answer)."""
    result = job["result"]
    return result["rows"] if result.get("reused") else json.loads(deps.blobs.get(result["key"]))


def visualize(deps: Any, tenant: Tenant, job: dict[str, Any]) -> StageOutcome:
    """Have the visualizer write a Vega-Lite spec; bind the result, check, render and store the chart."""
    from common.charts import bind_and_validate, chart_kind

    result, rows = job["result"], result_rows(deps, job)
    config = job["context"]["config"]
    reply = call_agent(deps, tenant.user_id, job, "visualizer", {
        "task": job["plan"]["tasks"]["visualizer_prompt"] or job["prompt"], "question": job["prompt"],
        "visual_hint": job["plan"].get("visual_hint", "auto"),
        "answer_settings": config["prompt_values"]["answer_settings"], "row_count": result["row_count"],
        "result_columns": "\n".join(f"{c['name']} ({c['dtype']})" for c in result["columns"]),
        "result_sample": json.dumps(rows[:RESULT_SAMPLE_ROWS], ensure_ascii=False, default=str)[:2000]},
        check=lambda spec: bind_and_validate(spec, result["columns"], rows, max_rows=deps.settings.sql_max_rows))
    spec = reply.value
    title = spec.get("title") if isinstance(spec.get("title"), str) else job["prompt"][:100]
    chart = deps.charts.save(tenant, spec=spec, kind=chart_kind(spec), query_id=job["query_id"],
                             session_id=job["session_id"], domain=job["domain"], title=title[:200],
                             chart_id=_chart_id(job["query_id"]))
    return StageOutcome({"chart": {"chart_id": chart.chart_id, "kind": chart.kind, "title": chart.title}},
                        reply.calls, ["compile"])


def _chart_id(query_id: str) -> str:
    # Derived from the query, so a retried stage finds the chart it already saved instead of a second one.
    return "c" + hashlib.sha256(query_id.encode()).hexdigest()[:32]


def analyze(deps: Any, tenant: Tenant, job: dict[str, Any]) -> StageOutcome:
    """Have the analyzer write quantified insights from a bounded summary of the result."""
    from common.analysis.result_summary import summarize_result

    result, rows = job["result"], result_rows(deps, job)
    config = job["context"]["config"]
    reply = call_agent(deps, tenant.user_id, job, "analyzer", {
        "task": job["plan"]["tasks"]["analyzer_prompt"] or job["prompt"], "question": job["prompt"],
        "answer_settings": config["prompt_values"]["answer_settings"], "sql": result["sql"],
        "result_summary": summarize_result(result["columns"], rows, row_count=result["row_count"],
                                           truncated=result["truncated"])},
        model_overrides=config["model_overrides"])
    return StageOutcome({"analysis": reply.value}, reply.calls, ["compile"])


def compile_stage(deps: Any, tenant: Tenant, job: dict[str, Any]) -> StageOutcome:
    """Write the answer (compiler, or the documents-only answer), check its numbers, render it."""
    answer, calls = compile_answer(deps, tenant, job, job["context"]["config"])
    return StageOutcome({}, calls, answer=answer)


STAGES = {"plan": plan, "manipulate": manipulate, "visualize": visualize, "analyze": analyze,
          "compile": compile_stage}
