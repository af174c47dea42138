"""Answers already given: the same question, on the same data, in the same conversation, with the same model
and prompts, is answered at once with no LLM call.

The key names everything an answer depends on: the tenant, every dataset version the question could read
(a re-upload changes the version, so the key changes: no invalidation by pattern), the normalised prompt,
the model, the request's options, every agent prompt's version, and the session's last answered turn.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from typing import Any

from common.auth import Tenant
from common.errors import ServiceUnavailable
from common.ports import QuestionPorts
from common.prompts.templates import AGENT_ROLES
from common.services import dataset_reads, sessions
from common.services.pipeline.request import QuestionRequest

log = logging.getLogger("convoinsight.answer_cache")

# Every prompt that can shape an answer: the pipeline's agents, and the documents-only one.
_ANSWERING_PROMPTS = (*AGENT_ROLES, "text_answer")



def answer_key(deps: QuestionPorts, tenant: Tenant, request: QuestionRequest) -> str:
    """The cache key of this request's answer, as things stand now."""
    records = dataset_reads.list_records(deps, tenant, request.domain)
    versions = sorted((r.data["name"], r.data["version"]) for r in records
                      if not request.datasets or r.data["name"] in request.datasets)
    last_turn = sessions.history(deps.metadata, tenant, request.session_id, last=1)
    material = {
        "tenant": tenant.namespace, "domain": request.domain, "versions": versions,
        "prompt": " ".join(request.prompt.lower().split()), "options": dataclasses.asdict(request.stored()),
        "prompts": {agent: deps.prompts.get(agent).version for agent in _ANSWERING_PROMPTS},
        "after": last_turn[0]["query_id"] if last_turn else None,
    }
    digest = hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()
    return f"answer:{tenant.namespace}:{digest}"


def cached_answer(deps: QuestionPorts, key: str) -> dict[str, Any] | None:
    """The answer stored under ``key``, if reuse is on and one is there."""
    if deps.settings.answer_cache_ttl_seconds <= 0:
        return None
    try:
        raw = deps.cache.get(key)
    except ServiceUnavailable:
        log.warning("answer cache unavailable: answering without it")  # reuse is an optimisation, never a failure
        return None
    return json.loads(raw) if raw else None


def remember_answer(deps: QuestionPorts, key: str, answer: dict[str, Any]) -> None:
    """Keep ``answer`` for the configured time."""
    if deps.settings.answer_cache_ttl_seconds <= 0:
        return
    try:
        deps.cache.set(key, json.dumps(answer, default=str).encode(), deps.settings.answer_cache_ttl_seconds)
    except ServiceUnavailable:
        log.warning("answer cache unavailable: this answer will not be reused")
