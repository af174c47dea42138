"""Model calls and sequential rounds, read from a job view's ``usage.by_call``.

A round is a group of model calls that ran at the same time: a user waits for each round in turn, so the
rounds, not the calls, set the latency a question costs. Each call's time window is
``[started_at, started_at + latency_ms)``; calls whose windows overlap, directly or through a chain of
overlaps, are one round. A call without ``started_at`` counts as a round of its own (nothing says it ran
alongside another). Attempts of one agent call (retries, fallbacks) share the ``started_at`` of that agent
call but run one after another, so each such attempt is placed after the previous one ends. Skipped
fallbacks (no request was made) are neither calls nor rounds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any


def made_calls(by_call: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The model calls that were really made (a skipped fallback sent no request)."""
    return [call for call in by_call if call.get("error") != "skipped"]


def call_windows(by_call: Iterable[Mapping[str, Any]]) -> tuple[list[tuple[float, float]], int]:
    """Each timed call's (start, end) in seconds, and how many calls had no usable ``started_at``."""
    windows, untimed = [], 0
    attempt_end: dict[tuple[Any, str], float] = {}  # (agent, started_at) -> end of its latest attempt
    for call in made_calls(by_call):
        start = _seconds(call.get("started_at"))
        if start is None:
            untimed += 1
            continue
        key = (call.get("agent"), call["started_at"])
        start = attempt_end.get(key, start)
        end = start + max(float(call.get("latency_ms") or 0.0), 0.0) / 1000.0
        attempt_end[key] = end
        windows.append((start, end))
    return windows, untimed


def count_rounds(by_call: Iterable[Mapping[str, Any]]) -> int:
    """The number of sequential rounds of model calls (see the module's rule)."""
    windows, untimed = call_windows(by_call)
    rounds, round_end = 0, None
    for start, end in sorted(windows):
        # Half-open windows: a call that starts exactly when another ends waited for it.
        if round_end is None or start >= round_end:
            rounds += 1
            round_end = end
        else:
            round_end = max(round_end, end)
    return rounds + untimed


def _seconds(stamp: Any) -> float | None:
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        moment = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)  # one clock wrote every stamp of a job: a naive one is its UTC
    return moment.timestamp()
