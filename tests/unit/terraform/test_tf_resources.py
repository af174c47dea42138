"""Terraform resource settings: function memory and time, Firestore protection and indexes, the bucket, log metrics."""

from __future__ import annotations

import inspect
import pathlib
import re
from typing import Any

import pytest

from tests.unit.terraform.tf_rules import (
    ENVIRONMENTS,
    MODULES,
    ROOT,
    blocks,
    effective_default,
    environments,
    locals_of,
    parse_file,
    resources,
)


def _memory_mib(text: str) -> int:
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", text).groups()
    return int(number) * (1024 if unit == "Gi" else 1)


@pytest.mark.parametrize("env", environments(), ids=lambda p: p.name)
def test_heavy_functions_get_more_memory_and_time_than_health(env: pathlib.Path) -> None:
    defaults = effective_default(env, "function_defaults")
    overrides = effective_default(env, "function_overrides")

    def setting(function: str, key: str) -> Any:
        return overrides.get(function, {}).get(key, defaults[key])

    for heavy in ("agents", "datasets"):
        assert _memory_mib(setting(heavy, "memory")) > _memory_mib(setting("health", "memory")), heavy
        assert setting(heavy, "timeout_seconds") > setting("health", "timeout_seconds"), heavy


@pytest.mark.parametrize("env", environments(), ids=lambda p: p.name)
def test_open_event_streams_share_an_instance_and_end_before_its_timeout(env: pathlib.Path) -> None:
    from common.config import SETTINGS

    defaults = effective_default(env, "function_defaults")
    queries = {**defaults, **effective_default(env, "function_overrides").get("queries", {})}
    assert queries["concurrency"] >= 20 and queries["cpu"] is not None  # concurrency above 1 needs a whole vCPU
    stream_seconds = next(setting.default for setting in SETTINGS if setting.name == "events_stream_seconds")
    assert stream_seconds < queries["timeout_seconds"]
    function = (MODULES / "function" / "main.tf").read_text(encoding="utf-8")
    assert "THREADS = tostring(var.concurrency)" in function  # or functions-framework serves 4 per CPU


def test_prod_refuses_to_delete_its_firestore_database() -> None:
    assert effective_default(ENVIRONMENTS / "prod", "firestore_delete_protection") is True


def test_firestore_indexes_cover_every_listed_collection() -> None:
    variables = dict(blocks(parse_file(MODULES / "firestore" / "variables.tf"), "variable"))
    indexed = set(variables["collections"]["default"])
    # The services name their collection in a module constant (COLLECTION = "datasets").
    used = {
        match
        for path in (ROOT / "common").rglob("*.py")
        for match in re.findall(r'^\w*COLLECTION\w* = "([^"]+)"', path.read_text(encoding="utf-8"), re.M)
    }
    assert used, "no COLLECTION constant found in common/: update this test to the new convention"
    # Records only ever read by key (one per tenant, or global) need no composite index.
    read_by_key_only = {"_ping", "llm_active", "prompt_config", "prompt_overrides"}
    missing = used - indexed - read_by_key_only
    assert not missing, f"add {sorted(missing)} to modules/firestore variable collections"
    # Every query of common/metadata/firestore.py filters on the tenant first.
    for fields in variables["record_indexes"]["default"]:
        assert fields[0] == ["tenant_id", "ASCENDING"], fields


def test_storage_bucket_is_private_and_expires_tmp() -> None:
    storage = parse_file(MODULES / "storage" / "main.tf")
    buckets = {name: body for rtype, name, body in resources(storage) if rtype == "google_storage_bucket"}
    for name, bucket in buckets.items():
        assert bucket["uniform_bucket_level_access"] is True, name
        assert bucket["public_access_prevention"] == "enforced", name
    rules = buckets["data"]["lifecycle_rule"]
    tmp_rules = [r for r in rules if r["condition"][0].get("matches_prefix") == ["${var.tmp_prefix}"]]
    assert tmp_rules and tmp_rules[0]["condition"][0]["age"] == 1 and tmp_rules[0]["action"][0]["type"] == "Delete"
    # Browsers read signed URLs and PUT direct uploads; the signed size header must pass the preflight.
    cors = buckets["data"]["cors"][0]
    assert cors["method"] == ["GET", "HEAD", "PUT"] and "x-goog-content-length-range" in cors["response_header"]


def test_log_based_metrics_read_what_a_finished_question_logs() -> None:
    from common.services.pipeline import runner
    from common.services.pipeline.job import Usage

    variables = dict(blocks(parse_file(MODULES / "metrics" / "variables.tf"), "variable"))
    assert variables["event"]["default"] == runner.FINISHED_EVENT
    logged = inspect.getsource(runner._log_finished) + inspect.getsource(Usage.summary)
    distributions = locals_of(parse_file(MODULES / "metrics" / "main.tf"))["distributions"]
    for metric in distributions.values():
        assert f'"{metric["field"]}"' in logged, metric["field"]  # a field the record carries
    assert '"status"' in logged
