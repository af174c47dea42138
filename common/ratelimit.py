"""Rate limits per tenant and class of request (``query``, ``upload``), with the `limits` library.

A question costs LLM calls, so each tenant gets a budget per window; an upload parses files, so it gets
one too. Limits are counted in Redis when the cache is Redis (every instance shares them) and in memory
otherwise (per instance, the local default). Going over answers 429 with ``Retry-After``.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from common import audit, errors

if TYPE_CHECKING:
    from common.config import Settings


class RateLimiter:
    """Counts hits per (class, tenant) in fixed windows; refuses the hit that goes over with RateLimited."""

    def __init__(self, rules: dict[str, str], storage_uri: str = "memory://", *, namespace: str = ""):
        from limits import parse, storage, strategies

        # Counters of deployments (or test runs) that share one Redis must not add up.
        self._namespace = namespace
        try:
            self._rules = {name: parse(rule) for name, rule in rules.items()}
        except ValueError as exc:
            raise errors.ConfigurationError(f"RATE_LIMITS: {exc}") from None
        self._limiter = strategies.FixedWindowRateLimiter(storage.storage_from_string(storage_uri))

    def hit(self, rule_class: str, tenant_namespace: str) -> None:
        """Count one request of ``rule_class`` for the tenant, or raise RateLimited when over the limit."""
        rule = self._rules.get(rule_class)
        if rule is None:
            return
        try:
            allowed = self._limiter.hit(rule, self._namespace, rule_class, tenant_namespace)
        except Exception as exc:  # noqa: BLE001 - the limits library raises its backend's errors
            raise errors.ServiceUnavailable("the rate limiter's store is unreachable") from exc
        if not allowed:
            reset = self._limiter.get_window_stats(rule, self._namespace, rule_class, tenant_namespace).reset_time
            retry_after = max(1, math.ceil(reset - time.time()))
            # A log line only: a flood of refused requests must not become a flood of store writes.
            audit.log_refusal("rate_limit.refused", errors.RateLimited.status, code=errors.RateLimited.code,
                              method="", path="", tenant_id=tenant_namespace,
                              details={"rule_class": rule_class, "retry_after": retry_after})
            raise errors.RateLimited(f"too many {rule_class} requests: the limit is {rule}", retry_after=retry_after)


def parse_rules(raw: str) -> dict[str, str]:
    """Read ``query=30/minute,upload=60/minute`` into {class: rule}."""
    rules = {}
    for part in filter(None, (item.strip() for item in raw.split(","))):
        name, _, rule = part.partition("=")
        if not name.strip() or not rule.strip():
            raise errors.ConfigurationError(f"RATE_LIMITS: expected class=rule, got {part!r}")
        rules[name.strip()] = rule.strip()
    return rules


def limiter_for(settings: Settings) -> RateLimiter:
    """Build the instance's limiter: in Redis with CACHE_BACKEND=redis, else in memory (per instance)."""
    uri = settings.redis_url if settings.cache_backend == "redis" else "memory://"
    return RateLimiter(parse_rules(settings.rate_limits), uri, namespace=settings.collection_prefix)
