"""One agent: its prompt rendered, the model called with the job's credentials, the reply parsed.

A reply not in the agent's format (or refused by the caller's own check, like a chart spec that names an
unknown column) is asked for again once, with the reason; a second bad reply fails the stage with that
reason. Every call made, failed ones included, is returned, or carried by the error (``AgentFailed.calls``),
for the query's usage. Inside a job, an accepted reply is kept (``reply_memo``), so a stage run again after a
failure that came later reuses it instead of calling the model again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from common import errors
from common.auth import Tenant
from common.ports import QuestionPorts
from common.services import query_jobs
from common.services.pipeline import reply_memo
from common.services.pipeline.job import JobRequest, QueryJob
from common.services.pipeline.request import job_credentials

if TYPE_CHECKING:
    from common.llm import Credentials, TextSink


@dataclasses.dataclass(frozen=True)
class AgentResult:
    value: Any
    calls: list[dict[str, Any]]


class AgentFailed(errors.AppError):
    """A step failed after making model calls: ``cause`` is the failure as raised (its status, code and
    message are this error's), ``calls`` the model calls made, failed ones included, to count in usage."""

    def __init__(self, cause: errors.AppError, calls: list[dict[str, Any]]):
        super().__init__(cause.message, code=cause.code, details=cause.details)
        self.status = cause.status
        self.cause = cause
        self.calls = calls


def call_agent(deps: QuestionPorts, tenant: Tenant, job: QueryJob | JobRequest, name: str, values: dict[str, Any],
               *, model_overrides: dict[str, Any] | None = None, check: Callable[[Any], Any] | None = None,
               credentials: Credentials | None = None, cancelled: Callable[[], bool] | None = None,
               sink: TextSink | None = None) -> AgentResult:
    """Ask agent ``name``; return its parsed (and checked) reply, or raise ``AgentFailed`` with the calls made.

    ``job`` gives the model, the credentials and the cancel flag; outside the pipeline (suggestions) it is
    just the request, and ``credentials`` and ``cancelled`` are given. With a ``sink``, the reply's text goes
    there as the model writes it (a second try after an unusable reply restarts it).
    """
    from common.prompts import OutputFormatError, parse_output, render, retry_instruction

    request = job.request if isinstance(job, QueryJob) else job
    template = deps.prompts.get(name)
    # The tenant's active model parameters, then the configuration layers' (which the request tops).
    overrides = {**request.model_params, **(model_overrides or {})}
    rendered = render(template, values, model_overrides=overrides)
    messages = rendered.messages()
    model_id = request.model_id
    calls: list[dict[str, Any]] = []
    kept_at = reply_memo.reply_key(tenant, job.query_id, name, model_id, messages, {
        "params": dict(rendered.model_params), "fallbacks": list(rendered.fallback_models or [])}) \
        if isinstance(job, QueryJob) else None
    reused = _kept_reply(deps, kept_at, template, check, sink) if kept_at else None
    if reused is not None:
        return reused  # this stage ran before and failed after the model answered: not paid for twice
    try:
        if cancelled is None or credentials is None:
            if not isinstance(job, QueryJob):
                raise TypeError("a call outside a job brings its credentials and says how it is cancelled")
            query_id = job.query_id
            cancelled = cancelled or (lambda: query_jobs.is_cancel_requested(deps.metadata, tenant, query_id))
            credentials = credentials or job_credentials(deps, tenant, model_id, job)
        for attempt in (1, 2):
            if attempt == 2 and sink is not None:
                sink.restart()
            reply = _complete(deps, name, messages, model_id, credentials, rendered, calls, cancelled,
                              json_output=template.output.format in {"json", "vega-lite"}, sink=sink)
            try:
                value = parse_output(template, reply.text)
                accepted = AgentResult(check(value) if check else value, calls)
                if kept_at:
                    reply_memo.keep(deps.cache, kept_at, reply.text, calls)
                return accepted
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
        from common.llm.client import Cancelled, LlmFailed

        made = exc.attempts if isinstance(exc, (Cancelled, LlmFailed)) else ()
        raise AgentFailed(exc, calls + [_record(name, record) for record in made]) from exc
    raise AssertionError("unreachable")


def _kept_reply(deps: QuestionPorts, key: str, template: Any, check: Callable[[Any], Any] | None,
                sink: TextSink | None) -> AgentResult | None:
    """The reply an earlier run of this stage was given for the same prompt, if it was kept and still passes
    the checks, with the calls that paid for it."""
    from common.prompts import OutputFormatError, parse_output

    kept = reply_memo.recall(deps.cache, key)
    if kept is None:
        return None
    try:
        value = parse_output(template, kept.text)
        value = check(value) if check else value
    except (OutputFormatError, errors.BadRequest):
        return None
    if sink is not None:
        sink.restart()  # what the earlier run streamed is void: the whole reply follows
        sink.write(kept.text)
    return AgentResult(value, kept.calls)


def _complete(deps: QuestionPorts, name: str, messages: list[dict[str, str]], model_id: str,
              credentials: Credentials, rendered: Any, calls: list[dict[str, Any]], cancelled: Callable[[], bool], *,
              json_output: bool, sink: TextSink | None) -> Any:
    started = deps.clock.now().isoformat()
    reply = deps.llm.complete(
        messages, model_id=model_id, credentials=credentials, params=dict(rendered.model_params),
        fallback_models=rendered.fallback_models, response_format_json=json_output, cancelled=cancelled, sink=sink)
    calls.extend(_record(name, record, started) for record in reply.attempts)
    return reply


def _record(agent: str, record: Any, started: str | None = None) -> dict[str, Any]:
    """One model call as usage keeps it; ``started`` (when the agent's call began) lets a reader tell which
    calls ran one after another and which side by side."""
    call = {"agent": agent, "model": record.model, "ok": record.ok, "error": record.error_kind,
            "prompt_tokens": record.prompt_tokens, "completion_tokens": record.completion_tokens,
            "cost_usd": record.cost_usd, "latency_ms": round(record.latency_ms, 1)}
    return call if started is None else {**call, "started_at": started}
