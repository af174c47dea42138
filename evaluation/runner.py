"""Ask every case through the API, one at a time, and grade each finished job view."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from evaluation.cases import DOMAIN_FILES, Case
from evaluation.client import Api
from evaluation.grading import grade
from evaluation.reference import DATA_DIR, Table
from evaluation.rounds import count_rounds, made_calls

SHOWN_ROWS = 5  # rows of the answer's table kept in the JSON report, to see what a wrong answer said


@dataclasses.dataclass
class CaseResult:
    """One question's outcome and what it cost, as the job view reported it."""

    id: str
    kind: str
    topic: str
    prompt: str
    correct: bool
    why_not: str
    status: str
    calls: int = 0
    rounds: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0  # submit to the end seen by polling (every 50 ms): what the user waits
    query_id: str | None = None
    session_id: str | None = None
    models: list[str] = dataclasses.field(default_factory=list)
    sql: str | None = None
    table_head: list[Any] = dataclasses.field(default_factory=list)


def upload_data(api: Api, cases: tuple[Case, ...]) -> None:
    """Upload the bundled files of every domain the cases ask about."""
    for domain in dict.fromkeys(case.domain for case in cases):
        for name in DOMAIN_FILES[domain]:
            api.upload(domain, DATA_DIR / name)


def warm_up(api: Api, domain: str, timeout: float) -> None:
    """Ask one uncounted small-talk question: a fresh emulator loads LiteLLM on its first model call (~6 s)."""
    status, body = api.ask(domain, "Hello!", None)
    if status == 202 and isinstance(body, dict):
        api.wait(body["query_id"], timeout)


def run_cases(api: Api, cases: tuple[Case, ...], references: dict[str, list[Table]], *, timeout: float,
              on_result: Callable[[CaseResult], None] = lambda result: None) -> list[CaseResult]:
    """Ask each case in order (follow-ups in their case's conversation); return the graded results."""
    conversations: dict[str, str] = {}  # a case's conversation -> the session the API made for its first question
    results = []
    for case in cases:
        session_id = conversations.get(case.session) if case.session else None
        result = ask_case(api, case, references.get(case.id, []), session_id, timeout)
        if case.session and result.session_id and case.session not in conversations:
            conversations[case.session] = result.session_id
        results.append(result)
        on_result(result)
    return results


def ask_case(api: Api, case: Case, references: list[Table], session_id: str | None, timeout: float) -> CaseResult:
    """Ask one case and grade its answer."""
    started = time.perf_counter()
    status, body = api.ask(case.domain, case.prompt, session_id)
    if status != 202 or not isinstance(body, dict):
        error = body.get("error", {}) if isinstance(body, dict) else {}
        return CaseResult(case.id, case.kind, case.topic, case.prompt, False,
                          f"submit refused ({status}): {error.get('message', body)}", "refused", session_id=session_id)
    view = api.wait(body["query_id"], timeout)
    latency = time.perf_counter() - started
    correct, why_not = grade(case, view, references)
    return from_view(case, view, correct, why_not, latency)


def from_view(case: Case, view: dict[str, Any], correct: bool, why_not: str, latency: float) -> CaseResult:
    """A CaseResult from a job view: calls and rounds from ``usage.by_call``, tokens and cost from ``usage``."""
    usage = view.get("usage") or {}
    by_call = usage.get("by_call") or []
    answer = view.get("answer") or {}
    table = answer.get("table") or {}
    return CaseResult(
        case.id, case.kind, case.topic, case.prompt, correct, why_not, view.get("status", "?"),
        calls=len(made_calls(by_call)), rounds=count_rounds(by_call),
        prompt_tokens=int(usage.get("prompt_tokens") or 0), completion_tokens=int(usage.get("completion_tokens") or 0),
        cost_usd=float(usage.get("cost_usd") or 0.0), latency_s=round(latency, 3), query_id=view.get("query_id"),
        session_id=view.get("session_id"),
        models=sorted({call.get("model") for call in by_call if call.get("model")}), sql=answer.get("sql"),
        table_head=list(table.get("rows") or [])[:SHOWN_ROWS])
