"""The capacity model's measured inputs (capacity/stage_times.yaml): each pipeline stage's own time, and what a
fresh agents instance pays before its first model call.

Stage times come from questions through the emulator's gateway and task dispatcher with instantly answering
scripted models (``tests.benchmarks.pipeline``'s set-up): a stage's span in the job (``started_at`` to
``finished_at``) less the model latency its calls recorded. The cold start is the agents function's import and
first request in a fresh process (``tests.benchmarks.cold_start``), then LiteLLM's import and tokenizer as the
instance's warm-up loads them (``common.warm_up``). Prints the YAML; ``--write-stage-times`` writes it into
capacity/stage_times.yaml's ``measured`` section (the assumptions beside it are left as they are).
Runnable alone: ``python -m tests.benchmarks.stage_times [--questions N] [--write-stage-times]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.benchmarks import cold_start, pipeline

ROOT = Path(__file__).resolve().parents[2]
STAGE_TIMES = ROOT / "capacity" / "stage_times.yaml"
AGENT_STAGE = {"planner": "plan", "manipulator": "manipulate", "visualizer": "visualize", "analyst": "compile"}
# The part of the warm-up a model call waits for (the import lock): LiteLLM and its tokenizer, as common/warm_up.py
# loads them first; the chart renderer and the SQL launcher it starts after do not hold a model call back.
_LITELLM = ("import time; t = time.perf_counter(); from common.llm import runtime; "
            "runtime.load_litellm().token_counter(model='gpt-4o-mini', text='warm up'); print(time.perf_counter() - t)")


def _seconds(stamp: str) -> float:
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def stage_compute(view: dict[str, Any]) -> dict[str, float]:
    """Each stage's span in a finished job's view, less the model latency of the calls it made."""
    model_s: dict[str, float] = {}
    for call in view["usage"]["by_call"]:
        stage = AGENT_STAGE.get(call.get("agent"), "")
        model_s[stage] = model_s.get(stage, 0.0) + float(call.get("latency_ms") or 0.0) / 1000.0
    return {name: _seconds(state["finished_at"]) - _seconds(state["started_at"]) - model_s.get(name, 0.0)
            for name, state in view["stages"].items() if state.get("started_at") and state.get("finished_at")}


def measure_stages(questions: int) -> dict[str, float]:
    """p50 of each stage's own time over ``questions`` questions (a designed chart: the visualizer is called)."""
    client, analyst, context = pipeline._client()
    try:
        pipeline._upload(client, "sales", pipeline._frame(100_000, 10))
        pipeline._ask(client, "sales")  # warm-up: imports and the first chart render
        analyst.plan = {**analyst.plan, "chart": "auto"}
        samples: dict[str, list[float]] = {}
        for _ in range(questions):
            _, view = pipeline._ask(client, "sales")
            for stage, seconds in stage_compute(view).items():
                samples.setdefault(stage, []).append(seconds)
    finally:
        context.close()
    return {stage: statistics.median(values) for stage, values in samples.items()}


def measure_cold_start(repeat: int = 3) -> tuple[float, float]:
    """Median seconds of (the agents function's import and first request, LiteLLM's warm-up), fresh processes."""
    with tempfile.TemporaryDirectory(prefix="bench-stage-times-") as data_dir:
        env = cold_start._env(data_dir)
        program = cold_start.first_request_program("agents", *cold_start.FIRST_REQUEST["agents"])
        cold_start._time_process([sys.executable, "-c", program], env)  # the OS file cache, as after a deploy
        imports = [cold_start._time_process([sys.executable, "-c", program], env) for _ in range(repeat)]
        warm_ups = [float(subprocess.run([sys.executable, "-c", _LITELLM], cwd=ROOT, env=env, check=True,
                                         capture_output=True, text=True).stdout.split()[-1]) for _ in range(repeat)]
    return statistics.median(imports), statistics.median(warm_ups)


def measured_yaml(stages: dict[str, float], import_s: float, warm_up_s: float, questions: int) -> str:
    """The ``measured`` section of capacity/stage_times.yaml for these figures."""
    cores, machine = os.cpu_count(), platform.node()
    lines = [f'  on: "{time.strftime("%Y-%m-%d")}, {machine}: {cores} cores, Python {platform.python_version()} '
             f'(p50 of {questions} questions, 100,000-row table)"',
             "  # Each stage's own time, model calls excluded: reading the job and the data, building prompts,",
             "  # the SQL (a forked DuckDB process), the chart render, storing the outcome, enqueueing the next.",
             "  stage_compute_s:"]
    lines += [f"    {stage}: {seconds:.3f}" for stage, seconds in stages.items()]
    lines += ["  # A new agents instance: its function's import and first request (cold-start benchmark), then",
              "  # LiteLLM's import and tokenizer, loaded in the background (common/warm_up.py) but before the",
              "  # instance's first model call can go out.",
              f"  instance_import_s: {import_s:.2f}", f"  litellm_warm_up_s: {warm_up_s:.1f}"]
    return "\n".join(lines) + "\n"


def write_measured(section: str, path: Path = STAGE_TIMES) -> None:
    """Replace the ``measured`` section of ``path`` (up to the next top-level key) with ``section``."""
    text = path.read_text(encoding="utf-8")
    updated, count = re.subn(r"(?ms)^measured:\n.*?(?=^\S)", lambda _: "measured:\n" + section + "\n", text, count=1)
    if count != 1:
        raise ValueError(f"{path} has no measured: section followed by another top-level key")
    path.write_text(updated, encoding="utf-8")


def report(questions: int = 20, write: bool = False) -> None:
    """Measure, print the section as YAML, and write it into capacity/stage_times.yaml when asked."""
    stages = measure_stages(questions)
    import_s, warm_up_s = measure_cold_start()
    section = measured_yaml(stages, import_s, warm_up_s, questions)
    print("\n## Stage times for the capacity model (capacity/stage_times.yaml, `measured`)\n")
    print("```yaml\nmeasured:\n" + section + "```")
    if write:
        write_measured(section)
        print(f"\nWritten to {STAGE_TIMES.relative_to(ROOT)}; `make capacity` shows what they do to the sizing.")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.stage_times")
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--write-stage-times", action="store_true",
                        help="write the figures into capacity/stage_times.yaml (otherwise only printed)")
    args = parser.parse_args(argv)
    report(args.questions, args.write_stage_times)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
