"""Remove dataset blobs no record points at (what an upload or delete could not clean up after itself), and
staged direct uploads nobody committed.

An upload writes its version's blobs before the record moves to it, so a young unreferenced version may be
an upload in progress: only versions older than a grace period are removed. The sweep reads every record
and lists every dataset blob, so it runs as a scheduled maintenance job, never on a request path.
"""

from __future__ import annotations

import datetime as dt
import logging
import posixpath

from common.metadata import MetadataStore
from common.services.datasets import COLLECTION
from common.storage import BlobStore, keys

log = logging.getLogger("convoinsight.cleanup")

DEFAULT_GRACE = dt.timedelta(hours=1)
# A staged direct upload (common/services/direct_uploads.py) is committed right after it is sent; one a day old
# was abandoned.
STAGED_UPLOAD_GRACE = dt.timedelta(days=1)


def sweep_dataset_blobs(blobs: BlobStore, metadata: MetadataStore, now: dt.datetime, *,
                        grace: dt.timedelta = DEFAULT_GRACE,
                        staged_grace: dt.timedelta = STAGED_UPLOAD_GRACE, dry_run: bool = False) -> dict:
    """Delete unreferenced dataset versions older than ``grace`` and staged uploads older than
    ``staged_grace``, in one listing; return what was (or would be) removed."""
    referenced = {posixpath.dirname(record.data["original_key"]) for record in metadata.scan(COLLECTION)
                  if record.data.get("original_key")}
    stale: dict[str, dt.datetime] = {}
    staged: dict[str, dt.datetime] = {}
    for info in blobs.list(keys.ROOT):
        if (prefix := keys.version_of(info.key)) is not None:
            if prefix not in referenced:
                stale[prefix] = max(stale.get(prefix, info.updated), info.updated)
        elif (prefix := keys.staged_upload_of(info.key)) is not None:
            staged[prefix] = max(staged.get(prefix, info.updated), info.updated)
    removed = sorted(prefix for prefix, newest in stale.items() if now - newest >= grace)
    abandoned = sorted(prefix for prefix, newest in staged.items() if now - newest >= staged_grace)
    if not dry_run:
        for prefix in removed + abandoned:
            blobs.delete_prefix(prefix + "/")
    if removed or abandoned:
        log.info("removed %d unreferenced dataset versions and %d abandoned uploads", len(removed), len(abandoned))
    return {"removed_versions": removed, "kept_recent": len(stale) - len(removed),
            "removed_staged_uploads": abandoned, "dry_run": dry_run}
