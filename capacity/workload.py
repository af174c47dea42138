"""What a question costs, read from ``stage_times.yaml``: measured stage times, assumed model latency and users."""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any

import yaml

STAGE_TIMES = pathlib.Path(__file__).with_name("stage_times.yaml")
STAGES = ("plan", "manipulate", "visualize", "compile")


@dataclasses.dataclass(frozen=True)
class Workload:
    stage_compute_s: dict[str, float]  # each stage's own time, model calls excluded
    model_calls: dict[str, int]  # model calls every question makes in each stage
    model_median_s: float
    model_sigma: float
    repair_share: float
    designed_chart_share: float
    instance_start_s: float  # a new instance: container start, then the function's import
    instance_import_s: float
    litellm_warm_up_s: float  # then LiteLLM's import before its first model call
    idle_instance_keep_s: float
    dispatch_latency_s: float
    burst_seconds: float
    think_time_s: float
    submit_s: float
    answer_seen_after_s: float
    legacy_share: float

    def replace(self, **changes: Any) -> Workload:
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)


def load_workload(path: pathlib.Path = STAGE_TIMES) -> Workload:
    """Read the stage times and assumptions; every stage of the pipeline must be there."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    measured, assumed = data["measured"], data["assumed"]
    missing = set(STAGES) - set(measured["stage_compute_s"]) | set(STAGES) - set(assumed["model_calls"])
    if missing:
        raise ValueError(f"{path.name} lacks stages {sorted(missing)}")
    return Workload(
        stage_compute_s={stage: float(measured["stage_compute_s"][stage]) for stage in STAGES},
        model_calls={stage: int(assumed["model_calls"][stage]) for stage in STAGES},
        model_median_s=float(assumed["model_call_s"]["median"]), model_sigma=float(assumed["model_call_s"]["sigma"]),
        repair_share=float(assumed["repair_share"]), designed_chart_share=float(assumed["designed_chart_share"]),
        instance_start_s=float(assumed["instance_start_s"]), instance_import_s=float(measured["instance_import_s"]),
        litellm_warm_up_s=float(measured["litellm_warm_up_s"]),
        idle_instance_keep_s=float(assumed["idle_instance_keep_s"]),
        dispatch_latency_s=float(assumed["dispatch_latency_s"]), burst_seconds=float(assumed["burst_seconds"]),
        think_time_s=float(assumed["think_time_s"]), submit_s=float(assumed["submit_s"]),
        answer_seen_after_s=float(assumed["answer_seen_after_s"]), legacy_share=float(assumed["legacy_share"]))
