"""The platform pieces of the model: the Cloud Tasks queue (a token bucket and a cap on tasks in flight) and a
Cloud Run service (instances with request slots, scaled out when every slot is taken, kept while idle)."""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable

from capacity.events import EventLoop
from capacity.settings import ServiceSizing

TOKEN_EPSILON = 1e-9  # a token refilled to within rounding of whole counts as whole


@dataclasses.dataclass
class Instance:
    ready_at: float  # serving from then
    warm_at: float  # its first model call may go out from then (LiteLLM imported)
    busy: int = 0
    idle_since: float = 0.0


class Service:
    """A Cloud Run service: ``request`` runs ``start(instance)`` in a free slot, scaling out up to max instances;
    a request that finds none waits, first come first served (Cloud Run holds it while an instance starts)."""

    def __init__(self, loop: EventLoop, sizing: ServiceSizing, *, start_s: float, warm_up_s: float, keep_s: float):
        self.loop, self.sizing, self.start_s, self.warm_up_s, self.keep_s = loop, sizing, start_s, warm_up_s, keep_s
        # Minimum instances are started ahead and have served (so warmed up) before the first user comes.
        self.instances = [Instance(ready_at=0.0, warm_at=0.0) for _ in range(sizing.min_instances)]
        self.waiting: collections.deque[tuple[float, Callable[[Instance], None]]] = collections.deque()
        self.cold_starts = 0
        self.peak_instances = len(self.instances)
        self.peak_busy = 0
        self.busy = 0
        self.wait_s: list[float] = []
        self.waited_at_max = 0  # requests that found every slot of max instances taken

    def request(self, start: Callable[[Instance], None]) -> None:
        """Serve a request: ``start(instance)`` once it holds a slot; it must call ``release`` when done."""
        self.waiting.append((self.loop.now, start))
        self._serve()
        if self.waiting:
            self._scale_out()

    def release(self, instance: Instance) -> None:
        instance.busy -= 1
        self.busy -= 1
        if instance.busy == 0:
            instance.idle_since = self.loop.now
            self.loop.at(self.keep_s, self._maybe_remove, instance)
        self._serve()

    def _serve(self) -> None:
        while self.waiting:
            free = [i for i in self.instances if i.ready_at <= self.loop.now and i.busy < self.sizing.concurrency]
            if not free:
                return
            instance = max(free, key=lambda i: i.busy)  # fill the busiest instance first, so idle ones can go
            asked_at, start = self.waiting.popleft()
            instance.busy += 1
            self.busy += 1
            self.peak_busy = max(self.peak_busy, self.busy)
            self.wait_s.append(self.loop.now - asked_at)
            start(instance)

    def _scale_out(self) -> None:
        starting = sum(self.sizing.concurrency - i.busy for i in self.instances if i.ready_at > self.loop.now)
        while len(self.waiting) > starting and len(self.instances) < self.sizing.max_instances:
            ready = self.loop.now + self.start_s
            self.instances.append(Instance(ready_at=ready, warm_at=ready + self.warm_up_s))
            self.cold_starts += 1
            starting += self.sizing.concurrency
            self.loop.at(self.start_s, self._serve)
        self.peak_instances = max(self.peak_instances, len(self.instances))
        if len(self.waiting) > starting:
            self.waited_at_max += 1

    def _maybe_remove(self, instance: Instance) -> None:
        idle_long_enough = instance.busy == 0 and self.loop.now - instance.idle_since >= self.keep_s
        if idle_long_enough and len(self.instances) > self.sizing.min_instances and instance in self.instances:
            self.instances.remove(instance)


class TaskQueue:
    """Cloud Tasks' rate limits: a token bucket of ``rate`` tokens a second holding at most ``burst``, and at most
    ``max_in_flight`` tasks dispatched and not yet answered. Tasks leave in the order they came."""

    def __init__(self, loop: EventLoop, rate: float, burst: float, max_in_flight: int):
        self.loop, self.rate, self.burst, self.max_in_flight = loop, rate, max(burst, 1.0), max_in_flight
        self.tokens, self.refilled_at = self.burst, 0.0
        self.tasks: collections.deque[tuple[float, Callable[[], None]]] = collections.deque()
        self.in_flight = 0
        self.wait_s: list[float] = []
        self.rate_bound = 0  # dispatches that waited for a token
        self.concurrency_bound = 0  # ... for a task in flight to end
        self._wake_scheduled = False

    def enqueue(self, deliver: Callable[[], None]) -> None:
        """Add a task; ``deliver()`` runs when it is dispatched and must lead to ``done`` once it is answered."""
        self.tasks.append((self.loop.now, deliver))
        self._dispatch()

    def done(self) -> None:
        self.in_flight -= 1
        self._dispatch()

    def _dispatch(self) -> None:
        self.tokens = min(self.burst, self.tokens + (self.loop.now - self.refilled_at) * self.rate)
        self.refilled_at = self.loop.now
        while self.tasks:
            if self.in_flight >= self.max_in_flight:
                self.concurrency_bound += 1
                return  # done() dispatches again
            if self.tokens < 1.0 - TOKEN_EPSILON:
                self.rate_bound += 1
                if not self._wake_scheduled:
                    self._wake_scheduled = True
                    # Not less than a microsecond: a float clock cannot advance by less than its rounding.
                    self.loop.at(max((1.0 - self.tokens) / self.rate, 1e-6), self._wake)
                return
            self.tokens = max(0.0, self.tokens - 1.0)
            self.in_flight += 1
            queued_at, deliver = self.tasks.popleft()
            self.wait_s.append(self.loop.now - queued_at)
            deliver()

    def _wake(self) -> None:
        self._wake_scheduled = False
        self._dispatch()
