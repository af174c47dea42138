"""How long a question's model call takes to fail when its provider is down, without and with circuit breakers.

The provider is ``tests.outage_model_server`` on loopback, answering 503 for the primary model (the fallback
model of the last figure answers). The client is the one a function builds (``bootstrap``: LLM_MAX_RETRIES,
LLM_TIMEOUT_SECONDS, the client's own backoff), with the default BREAKER_FAILURE_THRESHOLD and
BREAKER_RESET_SECONDS. Questions are asked one after another: the first ones pay every attempt and its backoff
(the breaker counts them), until the breaker opens; from then on a question fails at once with
DEPENDENCY_UNAVAILABLE, or goes straight to its fallback model. Runnable alone:
``python -m tests.benchmarks.breakers``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable

from common.breakers import BreakerRegistry
from common.config import Settings
from common.errors import AppError
from common.llm import runtime
from common.llm.client import LlmClient
from common.llm.keys import Credentials
from tests.outage_model_server import OutageModelServer

PRIMARY, FALLBACK = "openai/primary", "openai/fallback"
MESSAGES = [{"role": "user", "content": "total sales by region?"}]
QUESTIONS = 4  # enough for the default threshold (5 failed attempts) to open the breaker, and one after


@dataclasses.dataclass(frozen=True)
class Outcome:
    seconds: float
    result: str  # the error code, or the model that answered


@dataclasses.dataclass(frozen=True)
class BreakerResult:
    threshold: int
    attempts_per_model: int
    without: list[Outcome]
    with_breaker: list[Outcome]
    with_fallback: list[Outcome]


def _client(settings: Settings, breakers: BreakerRegistry | None) -> LlmClient:
    return LlmClient(timeout_seconds=settings.llm_timeout_seconds, max_retries=settings.llm_max_retries,
                     breakers=breakers)


def _ask(ask: Callable[[], str]) -> Outcome:
    started = time.perf_counter()
    try:
        result = ask()
    except AppError as exc:
        result = exc.code
    return Outcome(time.perf_counter() - started, result)


def measure(questions: int = QUESTIONS) -> BreakerResult:
    """Ask ``questions`` questions of a down provider three ways: no breaker, a breaker, a breaker and a fallback."""
    settings = Settings.from_env({})
    runtime.load_litellm()  # its import (seconds) is no part of a question's time to fail
    logging.getLogger("convoinsight").setLevel(logging.ERROR)  # one warning per failed attempt otherwise
    with OutageModelServer() as server:
        server.down.add("primary")
        credentials = Credentials("bench-key", server.url, "bench")

        def series(breakers: BreakerRegistry | None, fallbacks: tuple[str, ...] = ()) -> list[Outcome]:
            llm = _client(settings, breakers)
            return [_ask(lambda: llm.complete(MESSAGES, model_id=PRIMARY, credentials=credentials,
                                              fallback_models=fallbacks).model) for _ in range(questions)]

        def registry() -> BreakerRegistry:
            return BreakerRegistry(failure_threshold=settings.breaker_failure_threshold,
                                   reset_seconds=settings.breaker_reset_seconds)

        return BreakerResult(threshold=settings.breaker_failure_threshold,
                             attempts_per_model=settings.llm_max_retries + 1,
                             without=series(None), with_breaker=series(registry()),
                             with_fallback=series(registry(), (FALLBACK,)))


def report(result: BreakerResult) -> None:
    """Print the figures as Markdown: each question's time to fail (or to answer through the fallback)."""
    print(f"\n## A question whose provider is down (503), before and after circuit breakers "
          f"(threshold {result.threshold} failed attempts, {result.attempts_per_model} attempts a model)\n")
    print("| question | no breaker | breaker | breaker + fallback model |\n|---|---|---|---|")
    for number, row in enumerate(zip(result.without, result.with_breaker, result.with_fallback, strict=True), 1):
        cells = " | ".join(f"{_duration(outcome.seconds)} ({outcome.result})" for outcome in row)
        print(f"| {number} | {cells} |")
    opened = result.with_breaker[-1]
    print(f"\nOnce the breaker is open, a question fails in {_duration(opened.seconds)} ({opened.result}); "
          f"under a second: {'yes' if opened.seconds < 1.0 else 'NO'}.")


def _duration(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds >= 1.0 else f"{seconds * 1000:.1f} ms"


if __name__ == "__main__":
    report(measure())
