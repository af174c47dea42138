"""A stage's model replies, kept until its job is over, so a redelivered stage does not pay for them again.

A stage can fail after its model answered: the chart's blobs, the result's rows and the job itself are
written to backends that may be briefly unavailable, and the queue then runs the stage again. The reply
the model gave is kept in the cache, under the job and the exact prompt that asked for it, as soon as it
is accepted (before any step that can fail), and a second run that asks the same prompt reads it instead
of calling the model. The calls that paid for it come back with it: a stage given back for a retry never
stored them, so they are counted once, when the stage that used them is stored. A different prompt (the
data changed in between) is a different key and is asked anew. The cache is a saving, not a store: when it
fails, the model is asked again, as it was before.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from typing import Any

from common.auth import Tenant
from common.cache import Cache
from common.errors import AppError

log = logging.getLogger("convoinsight.pipeline")

TTL_SECONDS = 60 * 60  # longer than a stage's retries take (the queue's backoff is minutes at most)


@dataclasses.dataclass(frozen=True)
class KeptReply:
    text: str  # the reply as the model wrote it (parsed and checked again when reused)
    calls: list[dict[str, Any]]  # the model calls that produced it, for the query's usage


def reply_key(tenant: Tenant, query_id: str, agent: str, model_id: str, messages: list[dict[str, str]],
              params: dict[str, Any]) -> str:
    """Where the reply to this exact prompt, in this job, is kept."""
    asked = json.dumps([agent, model_id, messages, params], sort_keys=True, ensure_ascii=False, default=str)
    return f"tenants/{tenant.namespace}/agent-replies/{query_id}/{hashlib.sha256(asked.encode()).hexdigest()}"


def recall(cache: Cache, key: str) -> KeptReply | None:
    """The reply kept under ``key``, or None (none kept, or the cache cannot say)."""
    try:
        raw = cache.get(key)
    except AppError as exc:
        log.warning("kept model replies unavailable: %s", exc.message)
        return None
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        return KeptReply(text=data["text"], calls=list(data["calls"]))
    except (ValueError, KeyError, TypeError):
        return None  # not what this module writes: ask the model


def keep(cache: Cache, key: str, text: str, calls: list[dict[str, Any]]) -> None:
    """Keep an accepted reply (best effort: a failure here costs a model call on a retry, nothing more)."""
    try:
        cache.set(key, json.dumps({"text": text, "calls": calls}, ensure_ascii=False).encode(), TTL_SECONDS)
    except AppError as exc:
        log.warning("could not keep the model's reply for a retry: %s", exc.message)
