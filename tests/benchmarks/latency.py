"""A question's latency at 1.0 s a model call, through the real emulator as a user sees it (issue 9).

The models are the one stand-in: ``tests.model_server`` on loopback, answering every agent of a sales question
(``tests.benchmarks.sales_model``) after a fixed model latency: a plain reply after 1.0 s, a streamed one
starting after 0.3 s and ending at 1.0 s. The emulator is ``python -m local_emulator`` in a fresh process with
its own DATA_DIR (evaluation.client), the answer cache off. Measured: the first question of a fresh process
right after health answered and the upload (and, to tell the background warm-up's share, once the warm-up is
done); warm questions with a chart from a template (the planner says "bar") and one the visualizer designs
("auto"); and, through the question's events stream, when the answer's first text and the end arrived.
Runnable alone: ``python -m tests.benchmarks.latency [--questions N] [--json FILE]``. The tree of commit
d51b459 (six agents, no streaming) runs it too, so "before" is measured the same way.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.benchmarks.sales_model import QUESTION, SalesModel, write_sales_csv
from tests.model_server import ModelCall, ModelServer

LATENCY_S = 1.0  # one model call
FIRST_PIECE_S = 0.3  # a streamed call's time to first token
SCENARIOS = {"template": "bar", "designed": "auto"}  # the chart kind the planner (router) names
TARGET_ROUNDS = 3
TARGET_SLACK_S = 0.5  # a warm question: at most 3 rounds plus this
FRESH_EXTRA_S = 1.0  # the first question of a fresh process: within this of a warm one
POLL_S = 0.02
SETTLE_S = 15.0  # the emulator's background warm-up (LiteLLM's import, the chart renderer) takes about 6 s here


@dataclasses.dataclass(frozen=True)
class Question:
    wall_s: float  # submit -> seen succeeded (polled every 20 ms), or -> the end event when streamed
    calls: int
    rounds: int
    agents: list[str]
    outside_model_s: dict[str, float]  # wall time with no model call running: before, between, after them
    stages: dict[str, list[float]]  # each stage's start and finish, in seconds after submit (the job's stamps)
    first_text_s: float | None = None  # submit -> first answer_delta event (streamed questions only)


@dataclasses.dataclass(frozen=True)
class LatencyResult:
    first: list[Question]  # the first question of each fresh process, asked right after health and the upload
    first_asked_s: list[float]  # ... this long after health answered (the upload's time)
    first_settled: list[Question]  # the same, asked SETTLE_S after health: the background warm-up is done
    warm: dict[str, list[Question]]  # per scenario, polled
    streamed: dict[str, list[Question]]  # per scenario, read from the events stream

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Set environment variables for the emulator this process starts, and restore them after."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def fresh_emulator(model: ModelServer, workdir: Path) -> Iterator[Any]:
    """A fresh ``python -m local_emulator`` (health answers, the sales table uploaded): a user's API, and when
    health answered (perf_counter)."""
    from evaluation.client import Api, Emulator

    with contextlib.ExitStack() as stack:
        with _environment(LLM_DEFAULT_MODEL="openai/gpt-4o-mini", LLM_DEFAULT_API_KEYS="openai=sk-bench",
                          LLM_API_BASE=model.url, NO_PROXY="127.0.0.1,localhost", NO_GCE_CHECK="true"):
            emulator = stack.enter_context(Emulator())  # started now, with these settings
        healthy_at = time.perf_counter()
        api = Api(emulator.url, user="bench")
        api.upload("sales", workdir / "sales.csv")
        yield api, healthy_at


def _submit(api: Any) -> tuple[float, float, dict[str, Any]]:
    """Ask the question: when (time.time(), perf_counter) and the 202's body."""
    submitted, started = time.time(), time.perf_counter()
    status, body = api.request("POST", "/api/v1/queries", json.dumps({"domain": "sales", "prompt": QUESTION}).encode(),
                               "application/json")
    if status != 202:
        raise RuntimeError(f"the question was refused ({status}): {body}")
    return submitted, started, body


def ask_polling(api: Any, model: ModelServer) -> Question:
    """Submit the question and poll its status URL every 20 ms until it succeeded."""
    submitted, started, body = _submit(api)
    while True:
        status, view = api.request("GET", body["status_url"])
        if status == 200 and view["status"] in {"succeeded", "failed", "cancelled"}:
            wall, seen = time.perf_counter() - started, time.time()
            return _question(view, wall, model.calls_since(submitted), submitted, seen)
        time.sleep(POLL_S)


def ask_streaming(api: Any, model: ModelServer) -> Question:
    """Submit the question and read its events stream: submit -> first answer text, submit -> the end event."""
    submitted, started, body = _submit(api)
    address = urllib.parse.urlsplit(api.base_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
    connection.request("GET", body["events_url"], headers={"X-User-Id": api.user, "Accept": "text/event-stream"})
    response = connection.getresponse()
    first_text, kind, data = None, "", []
    try:
        for raw in response:
            line = raw.decode("utf-8").rstrip("\r\n")
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif not line:
                if kind == "answer_delta" and first_text is None:
                    first_text = time.perf_counter() - started
                elif kind == "end":
                    wall, seen = time.perf_counter() - started, time.time()
                    view = json.loads("\n".join(data))
                    return _question(view, wall, model.calls_since(submitted), submitted, seen, first_text)
                elif kind == "reconnect":
                    raise RuntimeError("the events stream ended before the question did")
                kind, data = "", []
    finally:
        connection.close()
    raise RuntimeError("the events stream closed before its end event")


def _question(view: dict[str, Any], wall: float, calls: list[ModelCall], submitted: float, seen: float,
              first_text: float | None = None) -> Question:
    from evaluation.rounds import count_rounds, made_calls

    if view["status"] != "succeeded":
        raise RuntimeError(f"the question did not succeed: {view.get('error')}")
    by_call = view["usage"]["by_call"]
    stages = {name: [_stamp(state.get("started_at")) - submitted, _stamp(state.get("finished_at")) - submitted]
              for name, state in view["stages"].items() if state.get("started_at") and state.get("finished_at")}
    return Question(wall, len(made_calls(by_call)), count_rounds(by_call), [call["agent"] for call in by_call],
                    outside_model(calls, submitted, seen), stages, first_text)


def _stamp(text: str) -> float:
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()


def outside_model(calls: list[ModelCall], submitted: float, seen: float) -> dict[str, float]:
    """The question's wall time when no model call was running: before the first, between calls, after the last."""
    windows = sorted((call.arrived, call.ended) for call in calls)
    if not windows:
        return {"before": seen - submitted, "between": 0.0, "after": 0.0}
    between, reach = 0.0, windows[0][1]
    for start, end in windows[1:]:
        between += max(0.0, start - reach)
        reach = max(reach, end)
    return {"before": windows[0][0] - submitted, "between": between, "after": seen - reach}


def measure(questions: int = 10, fresh: int = 3, settled: int = 2) -> LatencyResult:
    """The first question of ``fresh`` fresh emulators right after health answered, and of ``settled`` more
    SETTLE_S after it; then, in the last one, ``questions`` more per scenario, polled, and as many streamed."""
    sales = SalesModel()
    first, asked_after, first_settled = [], [], []
    warm: dict[str, list[Question]] = {}
    streamed: dict[str, list[Question]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as workdir, \
            ModelServer(sales, latency_s=LATENCY_S, first_piece_s=FIRST_PIECE_S) as model:
        write_sales_csv(Path(workdir) / "sales.csv")
        for process in range(fresh + settled):
            with fresh_emulator(model, Path(workdir)) as (api, healthy_at):
                sales.chart = SCENARIOS["template"]
                if process < fresh:
                    asked_after.append(time.perf_counter() - healthy_at)
                    first.append(ask_polling(api, model))
                    continue
                time.sleep(max(0.0, SETTLE_S - (time.perf_counter() - healthy_at)))
                first_settled.append(ask_polling(api, model))
                if process < fresh + settled - 1:
                    continue
                for scenario, chart in SCENARIOS.items():
                    sales.chart = chart
                    warm[scenario] = [ask_polling(api, model) for _ in range(questions)]
                    streamed[scenario] = [ask_streaming(api, model) for _ in range(questions)]
    return LatencyResult(first, asked_after, first_settled, warm, streamed)


def _p50(values: list[float]) -> float:
    return statistics.median(values)


def _tick(ok: bool) -> str:
    return "met" if ok else "NOT met"


def report(result: LatencyResult | dict[str, Any]) -> None:
    """Print the figures as Markdown, each next to its target."""
    data = result.to_json() if isinstance(result, LatencyResult) else result
    target = TARGET_ROUNDS * LATENCY_S + TARGET_SLACK_S
    print(f"\n## A question at {LATENCY_S:.1f} s a model call, through a fresh emulator (loopback model server; "
          f"streamed calls: first piece at {FIRST_PIECE_S:.1f} s)\n")
    print("| figure | value | target |\n|---|---|---|")
    warm_all = [q for questions in data["warm"].values() for q in questions]
    warm_p50 = _p50([q["wall_s"] for q in data["warm"]["template"]])
    firsts = [q["wall_s"] for q in data["first"]]
    print(f"| first question of a fresh process (template chart), median of {len(firsts)} processes | "
          f"{_p50(firsts):.2f} s (each: {', '.join(f'{s:.2f}' for s in firsts)}; {_p50(firsts) - warm_p50:+.2f} s "
          f"over warm p50) | <= {target + FRESH_EXTRA_S:.1f} s, within {FRESH_EXTRA_S:.0f} s of warm: "
          f"{_tick(_p50(firsts) <= target + FRESH_EXTRA_S and _p50(firsts) - warm_p50 <= FRESH_EXTRA_S)} |")
    print(f"| ... asked after health answered (the upload between) | "
          f"{', '.join(f'{s:.2f}' for s in data['first_asked_s'])} s | |")
    _report_where(data["first"])
    settled = [q["wall_s"] for q in data["first_settled"]]
    print(f"| first question of a fresh process asked {SETTLE_S:.0f} s after health (warm-up done), median of "
          f"{len(settled)} | {_p50(settled):.2f} s (each: {', '.join(f'{s:.2f}' for s in settled)}; "
          f"{_p50(settled) - warm_p50:+.2f} s over warm p50) | |")
    _report_where(data["first_settled"])
    for scenario, questions in data["warm"].items():
        walls, rounds = [q["wall_s"] for q in questions], [q["rounds"] for q in questions]
        agents = ", ".join(questions[0]["agents"])
        print(f"| warm, chart {scenario} ({SCENARIOS[scenario]}): wall p50 / max of {len(walls)} | "
              f"{_p50(walls):.2f} s / {max(walls):.2f} s | <= {target:.1f} s: {_tick(max(walls) <= target)} |")
        print(f"| ... calls / rounds per question | {statistics.mean(q['calls'] for q in questions):g} "
              f"({agents}) / {statistics.mean(rounds):g} | rounds <= {TARGET_ROUNDS}: "
              f"{_tick(max(rounds) <= TARGET_ROUNDS)} |")
        _report_where(questions)
    for scenario, questions in data["streamed"].items():
        ends = [q["wall_s"] for q in questions]
        texts = [q["first_text_s"] for q in questions]
        before_end = all(text is not None and text < end for text, end in zip(texts, ends, strict=True))
        first_text = (f"{_p50([t for t in texts if t is not None]):.2f} s" if all(t is not None for t in texts)
                      else "none before the end (the end event carries the answer)")
        print(f"| events stream, chart {scenario}: submit -> first answer text, p50 of {len(questions)} | "
              f"{first_text} | before the end: {_tick(before_end)} |")
        print(f"| ... submit -> end event, p50 | {_p50(ends):.2f} s | |")
    print(f"\nWarm questions: {len(warm_all)}, every one succeeded. Rounds: model calls that did not overlap in time "
          "(evaluation/rounds.py over the job's usage.by_call).")


def _report_where(questions: list[dict[str, Any]]) -> None:
    """Where the wall time went beyond the model calls, p50: the gaps between calls, and each stage's span."""
    outside = {part: _p50([q["outside_model_s"][part] for q in questions]) for part in ("before", "between", "after")}
    stages = ", ".join(f"{name} {_p50([q['stages'][name][0] for q in questions]):.2f}-"
                       f"{_p50([q['stages'][name][1] for q in questions]):.2f}"
                       for name in questions[0]["stages"] if all(name in q["stages"] for q in questions))
    print(f"| ... no model call running, p50 | {sum(outside.values()):.2f} s (before the first call "
          f"{outside['before']:.2f}, between calls {outside['between']:.2f}, after the last "
          f"{outside['after']:.2f}) | |")
    print(f"| ... stages, start-finish s after submit, p50 | {stages} | |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.latency")
    parser.add_argument("--questions", type=int, default=10, help="warm questions per scenario and way of waiting")
    parser.add_argument("--fresh", type=int, default=3, help="fresh emulators asked right after health answered")
    parser.add_argument("--settled", type=int, default=2, help=f"fresh emulators asked {SETTLE_S:.0f} s after it")
    parser.add_argument("--json", help="also write the raw figures to this file")
    args = parser.parse_args(argv)
    if args.settled < 1 or args.questions < 1:
        parser.error("the warm questions run in the last settled emulator: --settled and --questions must be >= 1")
    result = measure(args.questions, args.fresh, args.settled)
    report(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_json(), indent=1))


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    main()
