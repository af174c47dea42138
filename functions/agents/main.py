"""Function `agents`: the Cloud Tasks target that runs one pipeline stage per task.

Not routed through the API Gateway: in the cloud only the queue's service account (OIDC) may invoke it;
locally the emulator's dispatcher delivers to it in process. The task payload names the tenant.
"""

from __future__ import annotations

import flask

from common import bootstrap, warm_up
from common.http import Router, json_body
from common.services.pipeline import runner
from common.tasks import RETRY_COUNT_HEADER

router = Router("agents")


@router.route("/tasks/<stage>", methods=["POST"])
def run_stage(request: flask.Request, stage: str):
    deps = bootstrap.context()
    payload = json_body(request)
    if payload.get("stage") != stage:
        payload = {**payload, "stage": stage}
    retries = int(request.headers.get(RETRY_COUNT_HEADER) or 0)
    return runner.run_stage(deps, payload, last_attempt=retries + 1 >= deps.settings.tasks_max_attempts)


def agents(request: flask.Request) -> flask.Response:
    """Entry point (functions-framework target `agents`)."""
    warm_up.start()  # the first request of an instance starts paying, in the background, what questions need
    return router(request)
