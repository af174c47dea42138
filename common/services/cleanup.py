"""Remove dataset blobs no record points at: what an upload or delete could not clean up after itself.

An upload writes its version's blobs before the record moves to it, so a young unreferenced version may be
an upload in progress: only versions older than a grace period are removed. The sweep reads every record
and lists every dataset blob, so it runs as a scheduled maintenance job, never on a request path.
"""

from __future__ import annotations

import datetime as dt
import logging
import posixpath
from typing import Any

from common.services.datasets import COLLECTION

log = logging.getLogger("convoinsight.cleanup")

DEFAULT_GRACE = dt.timedelta(hours=1)


def _version_prefix(key: str) -> str | None:
    """``tenants/<ns>/datasets/<domain>/<name>/<version>`` of a dataset blob key, else None."""
    parts = key.split("/")
    if len(parts) >= 7 and parts[0] == "tenants" and parts[2] == "datasets":
        return "/".join(parts[:6])
    return None


def sweep_dataset_blobs(blobs: Any, metadata: Any, now: dt.datetime, *, grace: dt.timedelta = DEFAULT_GRACE,
                        dry_run: bool = False) -> dict:
    """Delete unreferenced dataset versions older than ``grace``; return what was (or would be) removed."""
    referenced = {posixpath.dirname(record.data["original_key"]) for record in metadata.scan(COLLECTION)
                  if record.data.get("original_key")}
    stale: dict[str, dt.datetime] = {}
    for info in blobs.list("tenants/"):
        prefix = _version_prefix(info.key)
        if prefix is None or prefix in referenced:
            continue
        stale[prefix] = max(stale.get(prefix, info.updated), info.updated)
    removed = sorted(prefix for prefix, newest in stale.items() if now - newest >= grace)
    if not dry_run:
        for prefix in removed:
            blobs.delete_prefix(prefix + "/")
    if removed:
        log.info("removed %d unreferenced dataset versions", len(removed))
    return {"removed_versions": removed, "kept_recent": len(stale) - len(removed), "dry_run": dry_run}
