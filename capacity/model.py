"""Users asking questions, in a closed loop, through the API functions, the queue and the agents function.

Each of ``users`` asks a question, waits for its answer, thinks (exponential, ``think_time_s`` on average) and
asks again; they start spread over one think time. A question: the submit request (queries, or the legacy
function's synchronous POST /query, which holds its slot until the answer), the events stream (one queries slot
until the end event), and the pipeline's stage tasks through the queue to agents: plan, manipulate, then
visualize and compile side by side. A stage holds an agents slot for its own compute plus its model calls; on
an instance still importing LiteLLM its first model call waits for that. Latency is submit to answer seen.
"""

from __future__ import annotations

import dataclasses
import math
import random
import statistics

from capacity.cloud import Service, TaskQueue
from capacity.events import EventLoop
from capacity.settings import Sizing
from capacity.workload import Workload

WARM_UP_S = 60.0  # questions asked before this are not counted: the start-up burst is not the steady state
RUN_S = 360.0


@dataclasses.dataclass(frozen=True)
class Report:
    users: int
    questions: int  # counted: asked after the warm-up
    unfinished: int  # ... of which still running at the end (their latency counts as at least the time so far)
    p50_s: float
    p95_s: float
    p99_s: float
    queue_wait_p95_s: float
    peak_agents_instances: int
    agents_cold_starts: int
    peak_stages_running: int
    bottlenecks: list[str]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))] if ordered else 0.0


class Simulation:
    """One run: ``users`` under ``sizing`` with ``workload``, seeded."""

    def __init__(self, workload: Workload, sizing: Sizing, users: int, seed: int = 1):
        self.workload, self.sizing, self.users = workload, sizing, users
        self.random = random.Random(seed)
        self.loop = EventLoop()
        self.queue = TaskQueue(self.loop, sizing.dispatches_per_second,
                               sizing.dispatches_per_second * workload.burst_seconds, sizing.max_concurrent_dispatches)
        start = workload.instance_start_s + workload.instance_import_s
        keep = workload.idle_instance_keep_s
        self.agents = Service(self.loop, sizing.services["agents"], start_s=start,
                              warm_up_s=workload.litellm_warm_up_s, keep_s=keep)
        self.api = {name: Service(self.loop, sizing.services[name], start_s=start, warm_up_s=0.0, keep_s=keep)
                    for name in ("queries", "legacy")}
        self.latencies: dict[int, float] = {}
        self.asked: dict[int, float] = {}
        self._ids = iter(range(10**9))

    def run(self, until: float = RUN_S) -> Report:
        for _ in range(self.users):
            self.loop.at(self.random.uniform(0, self.workload.think_time_s), self._ask)
        self.loop.run(until)
        return self._report(until)

    def _model_s(self) -> float:
        return self.workload.model_median_s * math.exp(self.random.gauss(0.0, self.workload.model_sigma))

    def _ask(self) -> None:
        question = next(self._ids)
        self.asked[question] = self.loop.now
        legacy = self.random.random() < self.workload.legacy_share
        front = self.api["legacy" if legacy else "queries"]

        def submitted(instance) -> None:
            def answered() -> None:  # the pipeline ended: the user sees it within one read of the job
                if not legacy:
                    self.api["queries"].release(stream)
                front.release(instance) if legacy else None
                self.loop.at(self.workload.answer_seen_after_s, self._answered, question)

            if not legacy:
                self.loop.at(self.workload.submit_s, front.release, instance)
            self.loop.at(self.workload.submit_s, self._pipeline, answered)

        stream = None
        if not legacy:
            def streaming(instance) -> None:
                nonlocal stream
                stream = instance

            self.api["queries"].request(submitted)
            self.api["queries"].request(streaming)
        else:
            front.request(submitted)

    def _answered(self, question: int) -> None:
        self.latencies[question] = self.loop.now - self.asked[question]
        self.loop.at(self.random.expovariate(1.0 / self.workload.think_time_s), self._ask)

    def _pipeline(self, answered) -> None:
        repaired = self.random.random() < self.workload.repair_share
        designed = self.random.random() < self.workload.designed_chart_share
        calls = dict(self.workload.model_calls)
        calls["manipulate"] += 1 if repaired else 0
        calls["visualize"] += 1 if designed else 0
        fan_in = {"left": 2}

        def after_fan_out() -> None:
            fan_in["left"] -= 1
            if fan_in["left"] == 0:
                answered()

        def after_manipulate() -> None:
            self._stage("visualize", calls["visualize"], after_fan_out)
            self._stage("compile", calls["compile"], after_fan_out)

        self._stage("plan", calls["plan"], lambda: self._stage("manipulate", calls["manipulate"], after_manipulate))

    def _stage(self, stage: str, model_calls: int, then) -> None:
        """Enqueue a stage task; once delivered to an agents slot it runs, releases the slot, and goes on."""
        def delivered() -> None:
            self.loop.at(self.workload.dispatch_latency_s, self.agents.request, running)

        def running(instance) -> None:
            compute = self.workload.stage_compute_s[stage]
            wait_for_warm_up = max(0.0, instance.warm_at - self.loop.now) if model_calls else 0.0
            busy = compute + wait_for_warm_up + sum(self._model_s() for _ in range(model_calls))
            self.loop.at(busy, finished, instance)

        def finished(instance) -> None:
            self.agents.release(instance)
            self.queue.done()
            then()

        self.queue.enqueue(delivered)

    def _report(self, until: float) -> Report:
        counted = [q for q, at in self.asked.items() if at >= WARM_UP_S]
        latency = [self.latencies.get(q, until - self.asked[q]) for q in counted]
        unfinished = sum(1 for q in counted if q not in self.latencies)
        return Report(users=self.users, questions=len(counted), unfinished=unfinished,
                      p50_s=statistics.median(latency) if latency else 0.0, p95_s=percentile(latency, 0.95),
                      p99_s=percentile(latency, 0.99), queue_wait_p95_s=percentile(self.queue.wait_s, 0.95),
                      peak_agents_instances=self.agents.peak_instances, agents_cold_starts=self.agents.cold_starts,
                      peak_stages_running=self.agents.peak_busy, bottlenecks=self._bottlenecks())

    def _bottlenecks(self) -> list[str]:
        found = []
        waits = percentile(self.queue.wait_s, 0.95)
        if self.queue.rate_bound and waits > 0.5:
            found.append(f"queue rate ({self.sizing.dispatches_per_second:g}/s)")
        if self.queue.concurrency_bound and waits > 0.5:
            found.append(f"queue concurrent dispatches ({self.sizing.max_concurrent_dispatches})")
        for name, service in {"agents": self.agents, **self.api}.items():
            if service.waited_at_max and percentile(service.wait_s, 0.95) > 0.5:
                found.append(f"{name} max instances x concurrency ({service.sizing.slots} slots)")
        return found


def simulate(workload: Workload, sizing: Sizing, users: int, *, seed: int = 1, until: float = RUN_S) -> Report:
    """Question latency and what bounds it, for ``users`` concurrent users."""
    return Simulation(workload, sizing, users, seed).run(until)


def floor(workload: Workload, sizing: Sizing, *, seed: int = 1) -> Report:
    """One user alone, warm instances: what a question costs with nothing in its way (its model rounds)."""
    warm = {name: dataclasses.replace(size, min_instances=max(1, size.min_instances))
            for name, size in sizing.services.items()}
    return Simulation(workload, sizing.replace(services=warm), 1, seed).run(until=4000.0)
