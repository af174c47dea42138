"""What a question needs that is slow the first time in a process, paid in the background as soon as an
instance serves its first request, so that no question pays it: LiteLLM's import and set-up (3-6 s), its
tokenizer, the chart renderer's worker process and script bundle (1-3 s), and the launcher of SQL processes.

``start`` returns at once and runs the work in one daemon thread, once per process; a question that arrives
meanwhile simply waits on the same imports (Python's import lock), never does them twice. Nothing here runs
at import time, so a cold start still imports no heavy library (tests/unit/test_cold_start_imports.py).
"""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger("convoinsight.warm_up")

_started = threading.Event()
done = threading.Event()  # set when the work has finished (tests and benchmarks wait on it)
_lock = threading.Lock()

_CHART = {"mark": "bar", "data": {"values": [{"x": "a", "y": 1}]},
          "encoding": {"x": {"field": "x", "type": "nominal"}, "y": {"field": "y", "type": "quantitative"}}}


def start() -> None:
    """Begin warming this process up in the background, unless it already has."""
    with _lock:
        if _started.is_set():
            return
        _started.set()
    threading.Thread(target=_warm_up, name="warm-up", daemon=True).start()


def _warm_up() -> None:
    began = time.monotonic()
    try:
        from common.llm import runtime

        litellm = runtime.load_litellm()
        litellm.token_counter(model="gpt-4o-mini", text="warm up")  # loads the bundled tokenizer
        from common.charts.render import render_html, render_png

        render_png(_CHART)  # starts the renderer's worker
        render_html(_CHART)  # builds the script bundle pages embed
        from common.analysis.sql_process import run_capped

        run_capped(int, ("1",), memory_bytes=256 * 2**20, timeout_seconds=30)  # starts the SQL launcher process
        log.info("warmed up in %.1f s", time.monotonic() - began)
    except Exception:  # noqa: BLE001 - warming up is an optimisation: the first question does it if this fails
        log.warning("warming up failed; the first question will pay for it", exc_info=True)
    finally:
        done.set()
