"""A question's result table: stored once by the manipulate stage, read by every stage after it."""

from __future__ import annotations

import json
from typing import Any

from common.auth import Tenant
from common.services.pipeline.job import QueryJob
from common.storage import BlobStore, keys


def store_rows(blobs: BlobStore, tenant: Tenant, query_id: str, rows: list[dict[str, Any]]) -> str:
    """Keep the result's rows (JSON); return their key."""
    key = keys.result_key(tenant, query_id)
    blobs.put(key, json.dumps(rows, ensure_ascii=False).encode("utf-8"), content_type="application/json")
    return key


def result_rows(blobs: BlobStore, job: QueryJob) -> list[dict[str, Any]]:
    """The result table's rows (stored by manipulate, or carried over from the previous answer)."""
    result = job.result
    if result is None:
        return []
    if result.reused:
        return result.rows or []
    return json.loads(blobs.get(result.key))
