"""A question through the emulator's gateway and task dispatcher, with instantly answering scripted models:
submit-to-succeeded latency, LLM calls per question, and prompt tokens for a narrow and a wide table.

The models are the one stand-in (tests/scripted_analyst.py); prompt tokens are counted on the prompts the
agents really received, with LiteLLM's tokenizer for ``openai/gpt-4o`` as the yardstick, per agent (planner,
manipulator when a query is repaired, visualizer, analyst), for a chart from a template (the planner says "bar")
and one the visualizer designs ("auto").
"""

from __future__ import annotations

import dataclasses
import io
import statistics
import tempfile
import time
from typing import Any

N_QUESTIONS = 20
SCENARIOS = {"template": "bar", "designed": "auto"}  # the chart kind the planner names
WIDTHS = {"10-column": 10, "300-column": 300}
TOKEN_BUDGETS = {"10-column": 5_000, "300-column": 15_000}  # a full question's prompt tokens (issue 9)
AGENT_ORDER = ("planner", "manipulator", "visualizer", "analyst")  # as a question calls them


@dataclasses.dataclass(frozen=True)
class PipelineResult:
    latencies: list[float]
    calls_per_question: float
    prompt_tokens: dict[str, dict[str, dict[str, int]]]  # scenario -> table width -> agent -> one question's
    token_budget: int
    cached_seconds: float  # the same question again, answered from the answer cache


def _frame(rows: int, columns: int) -> Any:
    import polars as pl

    index = pl.int_range(0, rows, eager=True)
    data = {"region": (index % 7).cast(pl.String), "month": (index % 12 + 1)}
    for n in range(columns - 2):
        data[f"metric_{n:03d}"] = ((index * (n + 7919)) % 10000) / 100.0
    return pl.DataFrame(data)


def _client() -> tuple[Any, Any, Any]:
    from werkzeug.test import Client

    from common import bootstrap
    from common.config import Settings
    from local_emulator.server import build_gateway, local_context
    from tests.scripted_analyst import Analyst
    from tests.scripted_llm import install_scripted_llm

    script = install_scripted_llm()
    analyst = Analyst()
    analyst.default_sql = "SELECT region, SUM(metric_000) AS revenue FROM sales GROUP BY region ORDER BY region"
    analyst.spec = {**analyst.spec, "encoding": {"x": {"field": "region", "type": "nominal"},
                                                 "y": {"field": "revenue", "type": "quantitative"}}}
    script.respond("scripted/model", analyst)
    # Answers are not reused here (the same question is asked again and again); cached_seconds measures reuse.
    settings = Settings.from_env({}, data_dir=tempfile.mkdtemp(prefix="bench-pipeline-"),
                                 llm_default_model="scripted/model", llm_default_api_keys="scripted=sk-bench-key",
                                 answer_cache_ttl_seconds=0, rate_limits="")
    gateway = build_gateway()
    context = local_context(settings, gateway.apps)
    bootstrap.use(context)
    return Client(gateway), analyst, context


def _upload(client: Any, domain: str, frame: Any) -> None:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    response = client.post("/api/v1/datasets", headers={"X-User-Id": "bench"}, content_type="multipart/form-data",
                           data={"domain": domain, "file": (io.BytesIO(buffer.getvalue()), "sales.parquet")})
    assert response.status_code == 201, response.get_data()


def _ask(client: Any, domain: str) -> tuple[float, dict]:
    started = time.perf_counter()
    submitted = client.post("/api/v1/queries", headers={"X-User-Id": "bench"},
                            json={"domain": domain, "prompt": "Compare revenue by region"}).get_json()
    while True:
        body = client.get(submitted["status_url"], headers={"X-User-Id": "bench"}).get_json()
        if body["status"] in {"succeeded", "failed", "cancelled"}:
            assert body["status"] == "succeeded", body
            return time.perf_counter() - started, body
        time.sleep(0.002)


def _prompt_tokens(analyst: Any) -> dict[str, int]:
    from common.llm import count_tokens

    tokens: dict[str, int] = {}
    for agent, messages, _ in analyst.calls:
        tokens[agent] = tokens.get(agent, 0) + count_tokens("openai/gpt-4o", messages)
    rank = {agent: n for n, agent in enumerate(AGENT_ORDER)}
    return dict(sorted(tokens.items(), key=lambda item: rank.get(item[0], len(rank))))


def measure() -> PipelineResult:
    """Ask ``N_QUESTIONS`` questions of a 100,000-row table, then one of a 300-column table."""
    client, analyst, context = _client()
    try:
        _upload(client, "sales", _frame(100_000, 10))
        _ask(client, "sales")  # warm-up: imports (LiteLLM, DuckDB, vl-convert) and the first chart render
        latencies, calls = [], []
        for _ in range(N_QUESTIONS):
            analyst.calls.clear()
            seconds, body = _ask(client, "sales")
            latencies.append(seconds)
            calls.append(body["usage"]["calls"])
        _upload(client, "wide", _frame(1_000, WIDTHS["300-column"]))
        tokens = {scenario: _scenario_tokens(client, analyst, chart) for scenario, chart in SCENARIOS.items()}
        cached = _cached_latency(client, context)
    finally:
        context.close()
    return PipelineResult(latencies, statistics.mean(calls), tokens, context.settings.prompt_token_budget, cached)


def _scenario_tokens(client: Any, analyst: Any, chart: str) -> dict[str, dict[str, int]]:
    """One question's prompt tokens per agent, on the narrow and the wide table, with the planner naming ``chart``."""
    analyst.plan = {**analyst.plan, "chart": chart}
    tokens = {}
    for width, domain in (("10-column", "sales"), ("300-column", "wide")):
        analyst.calls.clear()
        _ask(client, domain)
        tokens[width] = _prompt_tokens(analyst)
    return tokens


def _cached_latency(client: Any, context: Any) -> float:
    context.settings = context.settings.replace(answer_cache_ttl_seconds=3600)
    _ask(client, "sales")
    seconds, body = _ask(client, "sales")
    assert body["answer"].get("cached"), "the second ask should be a cache hit"
    return seconds
