"""Per-tenant budgets: questions and uploads over the limit are 429 with Retry-After, and other tenants are
not affected. Counted in memory (per instance) or in Redis (shared by every instance)."""

from __future__ import annotations

import pytest

from common import bootstrap, errors
from common.ratelimit import RateLimiter, parse_rules
from tests.conftest import require_service


def test_uploads_over_the_limit_are_429_for_that_tenant_only(alice, bob, ctx):
    bootstrap.use(bootstrap.build(ctx.settings.replace(rate_limits="upload=2/minute"), clock=ctx.clock,
                                  blobs=ctx.blobs, metadata=ctx.metadata))
    assert [alice.upload("d", ("a.csv", b"x\n1\n")).status_code for _ in range(2)] == [201, 201]
    refused = alice.upload("d", ("a.csv", b"x\n1\n"))
    assert refused.status_code == 429 and refused.get_json()["error"]["code"] == "RATE_LIMITED"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert alice.request("POST", "/datasets/upload", data={"domain": "d"},
                         content_type="multipart/form-data").status_code == 429  # the original route too
    assert bob.upload("d", ("a.csv", b"x\n1\n")).status_code == 201
    assert alice.get("/api/v1/datasets").status_code == 200  # reads are not limited


def test_questions_over_the_limit_are_429(pipeline, analyst):
    ctx = pipeline.context
    bootstrap.use(bootstrap.build(ctx.settings.replace(rate_limits="query=1/minute"), clock=ctx.clock,
                                  blobs=ctx.blobs, metadata=ctx.metadata, tasks=ctx.tasks))
    pipeline.upload("sales")
    assert pipeline.call("POST", "/api/v1/queries", json={"domain": "sales", "prompt": "x"}).status_code == 202
    assert pipeline.call("POST", "/api/v1/queries", json={"domain": "sales", "prompt": "y"}).status_code == 429
    legacy = pipeline.call("POST", "/query", json={"domain": "sales", "prompt": "y", "userId": "alice"})
    assert legacy.status_code == 429 and legacy.get_json()["code"] == "RATE_LIMITED"
    pipeline.context.tasks.drain(10)


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_the_limiter_counts_per_class_and_tenant(backend, unique_prefix):
    uri = "memory://" if backend == "memory" else require_service("TEST_REDIS_URL", "Redis")
    limiter = RateLimiter({"query": "2/minute"}, uri)
    alice, bob = f"alice-{unique_prefix}", f"bob-{unique_prefix}"
    limiter.hit("query", alice)
    limiter.hit("query", alice)
    with pytest.raises(errors.RateLimited):
        limiter.hit("query", alice)
    limiter.hit("query", bob)
    limiter.hit("upload", alice)  # a class without a rule is not limited


def test_deployments_sharing_one_redis_count_apart(unique_prefix):
    uri = require_service("TEST_REDIS_URL", "Redis")
    dev, prod = (RateLimiter({"query": "1/minute"}, uri, namespace=f"{env}-{unique_prefix}_")
                 for env in ("dev", "prod"))
    dev.hit("query", "alice")
    prod.hit("query", "alice")  # dev's hit did not count here
    with pytest.raises(errors.RateLimited):
        dev.hit("query", "alice")


def test_bad_rules_are_a_configuration_error():
    with pytest.raises(errors.ConfigurationError):
        parse_rules("query")
    with pytest.raises(errors.ConfigurationError):
        RateLimiter({"query": "often"})
