"""How much memory a piece of work took: the process's peak resident size over its size at the start."""

from __future__ import annotations

import pytest


def peak_growth(run) -> tuple[object, int]:
    """Run ``run()``; return its result and how far the process's peak resident memory rose above the start."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # resets VmHWM, the peak, to the current resident size
    except OSError:
        pytest.skip("this kernel does not let a process reset its peak memory (/proc/self/clear_refs)")

    def status(field: str) -> int:
        with open("/proc/self/status") as handle:
            line = next(line for line in handle if line.startswith(field + ":"))
        return int(line.split()[1]) * 1024

    start = status("VmRSS")
    result = run()
    return result, status("VmHWM") - start
