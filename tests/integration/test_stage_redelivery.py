"""A stage that fails after its model answered is run again by the queue, and reuses that answer: the model
is paid once per stage, on local backends and on the cloud ones (GCS, Firestore, Redis emulators) alike."""

from __future__ import annotations

import pytest

from common import errors
from common.services import query_jobs
from tests.integration.pipeline_fixtures import cloud_pipeline  # noqa: F401


@pytest.fixture(params=["local", "cloud"])
def sales(request):
    client = request.getfixturevalue("pipeline" if request.param == "local" else "cloud_pipeline")
    client.upload("sales")
    return client


class BlobsFailingOnce:
    """The real blob store, except that the first write of a key ending in ``suffix`` is refused (an outage)."""

    def __init__(self, real, suffix: str):
        self.real, self.suffix, self.failed = real, suffix, 0

    def put(self, key, *args, **kwargs):
        if key.endswith(self.suffix) and not self.failed:
            self.failed += 1
            raise errors.ServiceUnavailable("cloud storage is unavailable")
        return self.real.put(key, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_a_chart_write_that_fails_once_costs_no_second_visualizer_call(sales, analyst):
    charts = sales.context.charts
    charts.blobs = flaky = BlobsFailingOnce(charts.blobs, "/chart.html")
    body = sales.wait(sales.ask("Compare revenue by region")["query_id"])
    assert flaky.failed == 1  # the stage did fail after the visualizer answered, and was run again
    assert body["status"] == "succeeded", body
    assert body["answer"]["chart"]["kind"] == "bar" and body["answer"]["chart"]["html_url"]
    assert sorted(analyst.agents_called()) == ["analyst", "planner", "visualizer"]
    assert body["usage"]["calls"] == 3  # the reused reply's call is counted once, not lost, not doubled


@pytest.mark.parametrize("stage, agent", [("plan", "planner"), ("visualize", "visualizer"), ("compile", "analyst")])
def test_a_stage_whose_job_cannot_be_written_once_is_run_again_without_calling_its_model_again(
        sales, analyst, monkeypatch, stage, agent):
    real, refused = query_jobs.finish_stage, []

    def finish_stage(metadata, tenant, query_id, name, *args, **kwargs):
        if name == stage and not refused:
            refused.append(name)
            raise errors.ServiceUnavailable("metadata store is unavailable")
        return real(metadata, tenant, query_id, name, *args, **kwargs)

    monkeypatch.setattr(query_jobs, "finish_stage", finish_stage)
    body = sales.wait(sales.ask("Compare revenue by region")["query_id"])
    assert refused == [stage]
    assert body["status"] == "succeeded", body
    assert analyst.agents_called().count(agent) == 1
    assert sorted(analyst.agents_called()) == ["analyst", "planner", "visualizer"]
    assert body["usage"]["calls"] == 3
    assert body["answer"]["answer_markdown"].startswith("**Bottom line:**")


def test_a_changed_prompt_is_asked_again_not_answered_from_an_earlier_run(sales, analyst):
    sales.wait(sales.ask("Compare revenue by region")["query_id"])
    sales.wait(sales.ask("Compare revenue by region")["query_id"])  # another question: another job
    assert analyst.agents_called().count("planner") == 2
