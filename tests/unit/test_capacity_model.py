"""The capacity model (capacity/): the prod sizing Terraform deploys keeps 100 and 1,000 concurrent users close to
one question's own latency, the old sizing does not, and the queue and instances behave as Cloud Tasks and Cloud
Run do. Seeded, so every run gives the same figures."""

from __future__ import annotations

import dataclasses

import pytest

from capacity.cloud import Service, TaskQueue
from capacity.events import EventLoop
from capacity.model import floor, simulate
from capacity.settings import OLD_SIZING, ServiceSizing, settings_of
from capacity.workload import STAGES, load_workload


@pytest.fixture(scope="module")
def workload():
    return load_workload()


@pytest.fixture(scope="module")
def prod():
    return settings_of("prod")


@pytest.fixture(scope="module")
def alone(workload, prod):
    return floor(workload, prod)


def test_stage_times_cover_every_pipeline_stage(workload) -> None:
    from common.services.pipeline.stages import STAGES as PIPELINE_STAGES

    assert set(STAGES) == set(PIPELINE_STAGES)
    assert all(seconds > 0 for seconds in workload.stage_compute_s.values())


def test_settings_are_read_from_the_terraform_that_deploys(prod) -> None:
    agents = prod.services["agents"]
    assert prod.max_concurrent_dispatches == agents.concurrency * agents.max_instances
    assert agents.concurrency > 1 and agents.min_instances >= 1
    assert settings_of("dev").services["agents"].min_instances == 0  # dev stays free when idle


def test_one_question_alone_costs_its_model_rounds(workload, alone) -> None:
    rounds = 2 * workload.model_median_s  # planner, then the analyst (beside the chart)
    assert rounds <= alone.p50_s <= rounds + 1.5


def test_100_users_stay_close_to_one_question_alone(workload, prod, alone) -> None:
    report = simulate(workload, prod, 100)
    assert report.p50_s <= 1.1 * alone.p50_s and report.p95_s <= 1.5 * alone.p95_s, report
    assert not report.bottlenecks, report


def test_1000_users_stay_bounded(workload, prod, alone) -> None:
    report = simulate(workload, prod, 1000)
    assert report.p50_s <= 1.2 * alone.p50_s and report.p95_s <= 1.5 * alone.p95_s, report
    assert report.queue_wait_p95_s < 0.5 and not report.bottlenecks, report
    agents = prod.services["agents"]
    assert report.peak_stages_running < 0.9 * agents.slots, "less than 10% headroom at 1,000 users"


def test_the_old_sizing_is_far_worse_at_1000_users(workload, prod) -> None:
    new, old = simulate(workload, prod, 1000), simulate(workload, OLD_SIZING, 1000)
    assert old.p95_s > 10 * new.p95_s and old.p50_s > 10 * new.p50_s, (old, new)
    assert any("queue rate" in limit for limit in old.bottlenecks), old.bottlenecks


def test_queue_dispatches_no_faster_than_its_rate() -> None:
    loop, dispatched = EventLoop(), []
    queue = TaskQueue(loop, rate=10, burst=1, max_in_flight=1000)
    for _ in range(50):
        queue.enqueue(lambda: dispatched.append(loop.now))
    loop.run(100)
    assert len(dispatched) == 50
    assert dispatched[-1] >= (50 - 1) / 10 - 1e-6  # N tasks at r a second: (N - burst) / r at least
    assert dispatched[-1] <= 50 / 10


def test_queue_holds_tasks_beyond_its_concurrent_dispatches() -> None:
    loop, running = EventLoop(), []
    queue = TaskQueue(loop, rate=1000, burst=1000, max_in_flight=3)
    for _ in range(5):
        queue.enqueue(lambda: running.append(loop.now))
    loop.run(1)
    assert len(running) == 3 and queue.in_flight == 3
    queue.done()
    loop.run(2)
    assert len(running) == 4


def _one_request(service: Service, loop: EventLoop) -> list:
    served = []
    service.request(lambda instance: served.append((loop.now, instance.warm_at)))
    loop.run(100)
    return served


def test_a_new_instance_pays_its_cold_start_and_a_minimum_instance_does_not() -> None:
    loop = EventLoop()
    cold = Service(loop, ServiceSizing(concurrency=10, min_instances=0, max_instances=5),
                   start_s=1.4, warm_up_s=3.0, keep_s=300)
    (served_at, warm_at), = _one_request(cold, loop)
    assert served_at == pytest.approx(1.4) and warm_at == pytest.approx(4.4) and cold.cold_starts == 1
    loop = EventLoop()
    warm = Service(loop, ServiceSizing(concurrency=10, min_instances=1, max_instances=5),
                   start_s=1.4, warm_up_s=3.0, keep_s=300)
    (served_at, warm_at), = _one_request(warm, loop)
    assert served_at == 0 and warm_at == 0 and warm.cold_starts == 0


def test_cold_starts_show_in_question_latency(workload, prod) -> None:
    scale_to_zero = prod.replace(services={**prod.services, "agents": dataclasses.replace(
        prod.services["agents"], min_instances=0)})
    first = simulate(workload.replace(think_time_s=5000, legacy_share=0.0), scale_to_zero, 1, until=6000)
    assert first.questions >= 1 and first.agents_cold_starts >= 1  # its instances go after 5 idle minutes
    assert first.p50_s >= workload.instance_start_s + workload.litellm_warm_up_s + 2 * workload.model_median_s * 0.3
