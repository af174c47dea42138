"""The two ways a chart is refused, both 400s whose message goes back to the visualizer for one more try."""

from __future__ import annotations

from common.errors import BadRequest


class ChartSpecError(BadRequest):
    """The chart spec is unusable; the message says precisely why (it is shown to the visualizer)."""

    code = "CHART_SPEC"


class ChartTooExpensive(ChartSpecError):
    """The chart would cost more to draw than a chart may (rows, marks, pixels, memory or time)."""

    code = "CHART_TOO_EXPENSIVE"
