"""A minimal discrete-event loop: actions scheduled at simulated times, run in time order.

A heap of (time, sequence, action) is all the model needs: its processes are a few callbacks each, and a
library (simpy) would add a dependency and generator plumbing without removing any of the model's own logic
(the queue's token bucket, the autoscaled instances). The sequence number keeps equal times in schedule order,
so a run is deterministic.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Any


class EventLoop:
    """Simulated time, starting at 0 s; ``at`` schedules an action ``delay`` seconds from now."""

    def __init__(self) -> None:
        self.now = 0.0
        self._pending: list[tuple[float, int, Callable[..., Any], tuple[Any, ...]]] = []
        self._order = itertools.count()

    def at(self, delay: float, action: Callable[..., Any], *args: Any) -> None:
        """Run ``action(*args)`` ``delay`` seconds from now (after anything already scheduled for that time)."""
        heapq.heappush(self._pending, (self.now + max(delay, 0.0), next(self._order), action, args))

    def run(self, until: float) -> None:
        """Run every action due up to ``until``, in time order; leave the clock at ``until``."""
        while self._pending and self._pending[0][0] <= until:
            when, _, action, args = heapq.heappop(self._pending)
            self.now = when
            action(*args)
        self.now = until
