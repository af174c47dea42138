"""Function `cleanup`: the Cloud Scheduler target that sweeps what failed writes left behind (unreferenced
dataset versions, abandoned uploads, questions that stopped moving), deletes the conversations kept past
SESSION_RETENTION_DAYS and the audit records past AUDIT_RETENTION_DAYS, and re-encrypts stored secrets still
under an older ENCRYPTION_KEYS key (``common.services.key_rotation``).

Not routed through the API Gateway: in the cloud only the scheduler's service account may invoke it;
locally the emulator runs it on a timer.
"""

from __future__ import annotations

import flask

from common import bootstrap, scratch
from common.http import Router
from common.services.audit_retention import expire_audit_records
from common.services.cleanup import sweep_dataset_blobs
from common.services.key_rotation import reencrypt_if_configured
from common.services.retention import expire_sessions
from common.services.stalled_jobs import end_stalled_jobs

router = Router("cleanup")


@router.route("/", methods=["POST"])
@router.route("/cleanup", methods=["POST"])
def run_cleanup(request: flask.Request):
    ctx = bootstrap.context()
    dry_run = request.args.get("dry_run", "").lower() in {"1", "true", "yes"}
    now = ctx.clock.now()
    return {"datasets": sweep_dataset_blobs(ctx.blobs, ctx.metadata, now, dry_run=dry_run),
            "sessions": expire_sessions(ctx, now, retention_days=ctx.settings.session_retention_days,
                                        dry_run=dry_run),
            "questions": end_stalled_jobs(ctx, dry_run=dry_run),
            "secrets": reencrypt_if_configured(ctx, dry_run=dry_run),
            "audit": expire_audit_records(ctx.metadata, now, retention_days=ctx.settings.audit_retention_days,
                                          dry_run=dry_run),
            "temporary_folders": [] if dry_run else scratch.sweep()}


def cleanup(request: flask.Request) -> flask.Response:
    """Entry point (functions-framework target `cleanup`)."""
    return router(request)
