"""One agent: its prompt rendered, the model called with the job's credentials, the reply parsed.

A reply not in the agent's format (or refused by the caller's own check, like a chart spec that names an
unknown column) is asked for again once, with the reason; a second bad reply fails the stage with that
reason. Every call made, failed ones included, is returned (or attached to the error) for the query's usage.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from common import errors
from common.services import query_jobs
from common.services.pipeline.request import job_credentials


@dataclasses.dataclass(frozen=True)
class AgentResult:
    value: Any
    calls: list[dict[str, Any]]


def call_agent(deps: Any, tenant_id: str, job: dict[str, Any], name: str, values: dict[str, Any], *,
               model_overrides: dict[str, Any] | None = None, check: Callable[[Any], Any] | None = None,
               credentials: Any = None, cancelled: Callable[[], bool] | None = None) -> AgentResult:
    """Ask agent ``name``; return its parsed (and checked) reply, or raise with ``.calls`` attached.

    ``job`` gives the model, the credentials and the cancel flag, unless ``credentials`` and ``cancelled``
    are given (a call outside the pipeline, like suggestions).
    """
    from common.prompts import OutputFormatError, parse_output, render, retry_instruction

    template = deps.prompts.get(name)
    # The tenant's active model parameters, then the configuration layers' (which the request tops).
    overrides = {**job["request"].get("model_params", {}), **(model_overrides or {})}
    rendered = render(template, values, model_overrides=overrides)
    messages = rendered.messages()
    model_id = job["request"]["model_id"]
    calls: list[dict[str, Any]] = []
    if cancelled is None:
        cancelled = lambda: query_jobs.is_cancel_requested(deps.metadata, tenant_id, job["query_id"])  # noqa: E731
    try:
        credentials = credentials or job_credentials(deps, tenant_id, model_id, job)
        for attempt in (1, 2):
            reply = _complete(deps, name, messages, model_id, credentials, rendered, calls, cancelled,
                              json_output=template.output.format in {"json", "vega-lite"})
            try:
                value = parse_output(template, reply.text)
                return AgentResult(check(value) if check else value, calls)
            except OutputFormatError as exc:
                reason, retry = exc.reason, retry_instruction(template, exc)
            except errors.BadRequest as exc:  # the caller's check refused it (e.g. an unknown chart field)
                reason = exc.message
                retry = f"Your previous reply could not be used: {reason}. Reply again, fixing exactly that."
            if attempt == 2:
                raise errors.UpstreamError(f"the {name} agent's reply was unusable twice: {reason}",
                                           code="AGENT_OUTPUT_INVALID")
            messages = [*messages, {"role": "assistant", "content": reply.text}, {"role": "user", "content": retry}]
    except errors.AppError as exc:
        exc.calls = calls + [_record(name, record) for record in getattr(exc, "attempts", ())]
        raise
    raise AssertionError("unreachable")


def _complete(deps: Any, name: str, messages: list[dict[str, str]], model_id: str, credentials: Any, rendered: Any,
              calls: list[dict[str, Any]], cancelled: Callable[[], bool], *, json_output: bool) -> Any:
    reply = deps.llm.complete(
        messages, model_id=model_id, credentials=credentials, params=dict(rendered.model_params),
        fallback_models=rendered.fallback_models, response_format_json=json_output, cancelled=cancelled)
    calls.extend(_record(name, record) for record in reply.attempts)
    return reply


def _record(agent: str, record: Any) -> dict[str, Any]:
    return {"agent": agent, "model": record.model, "ok": record.ok, "error": record.error_kind,
            "prompt_tokens": record.prompt_tokens, "completion_tokens": record.completion_tokens,
            "cost_usd": record.cost_usd, "latency_ms": round(record.latency_ms, 1)}
