"""The task queue on Google Cloud Tasks: each task is an HTTP task whose target is the agents function.

``google.cloud.tasks_v2`` is imported when a queue is built without a client, never with this module. Cloud
Tasks itself de-duplicates by name (``ALREADY_EXISTS``), retries with the queue's backoff and ``max_attempts``
(its ``retry_config``, set by Terraform), and signs each request with an OIDC token for
``service_account_email`` whose audience is the target base URL, which the agents function's invoker check
accepts. Task ids should not be sequential (Cloud Tasks indexes them): ids built from random query ids are fine.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any

from common.clock import Clock, SystemClock
from common.errors import ServiceUnavailable, UpstreamError
from common.tasks import Task, check_task_name

# Calls fail fast rather than waiting out the client's default deadlines: a stage that cannot enqueue its
# successor fails its own attempt, and Cloud Tasks retries that.
_CALL_TIMEOUT_SECONDS = 30
_PING_TIMEOUT_SECONDS = 5


class CloudTasksQueue:
    """Create each task in one Cloud Tasks queue, as a POST to ``target_base_url`` + the task's path."""

    def __init__(self, project: str, location: str, queue: str, target_base_url: str,
                 service_account_email: str = "", *, client: Any = None, clock: Clock | None = None):
        if not all((project, location, queue)) or any("/" in part for part in (project, location, queue)):
            raise ValueError("project, location and queue must be non-empty ids without '/'")
        if not target_base_url.startswith(("https://", "http://")):
            raise ValueError(f"target_base_url must be an http(s) URL, got {target_base_url!r}")
        if client is None:
            from google.cloud import tasks_v2

            with _translated(f"projects/{project}/locations/{location}/queues/{queue}"):
                client = tasks_v2.CloudTasksClient()  # finds credentials now: none is GoogleAuthError
        self._client = client
        self.queue_path = f"projects/{project}/locations/{location}/queues/{queue}"
        self._target = target_base_url.rstrip("/")
        self._service_account = service_account_email
        self._clock = clock or SystemClock()

    def enqueue(self, task: Task) -> bool:
        """Create the task; return False when Cloud Tasks already has (or recently had) one of that name."""
        from google.api_core import exceptions as api_errors

        request = {"parent": self.queue_path, "task": self._cloud_task(task)}
        try:
            with _translated(self.queue_path, passing=(api_errors.AlreadyExists,)):
                self._client.create_task(request=request, timeout=_CALL_TIMEOUT_SECONDS)
        except api_errors.AlreadyExists:
            return False
        return True

    def delete(self, name: str) -> None:
        """Delete the task if Cloud Tasks still has it; a task that ran or never existed is not an error."""
        from google.api_core import exceptions as api_errors

        full_name = f"{self.queue_path}/tasks/{check_task_name(name)}"
        try:
            with _translated(self.queue_path, passing=(api_errors.NotFound,)):
                self._client.delete_task(name=full_name, timeout=_CALL_TIMEOUT_SECONDS)
        except api_errors.NotFound:
            return

    def ping(self) -> None:
        """Raise ``ServiceUnavailable`` when the queue cannot be read."""
        try:
            with _translated(self.queue_path):
                self._client.get_queue(name=self.queue_path, retry=None, timeout=_PING_TIMEOUT_SECONDS)
        except UpstreamError as error:
            raise ServiceUnavailable(f"cloud tasks refused to read the queue {self.queue_path!r}") from error

    def _cloud_task(self, task: Task) -> dict[str, Any]:
        http_request: dict[str, Any] = {
            "http_method": "POST",
            "url": self._target + task.path,
            "headers": {"Content-Type": "application/json"},
            "body": task.body(),
        }
        if self._service_account:
            http_request["oidc_token"] = {"service_account_email": self._service_account,
                                          "audience": self._target}
        cloud_task: dict[str, Any] = {"name": f"{self.queue_path}/tasks/{task.name}", "http_request": http_request}
        if task.delay_seconds:
            cloud_task["schedule_time"] = self._clock.now() + dt.timedelta(seconds=task.delay_seconds)
        return cloud_task


@contextlib.contextmanager
def _translated(queue_path: str, passing: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Raise the client's errors as ``common.errors``, except those in ``passing``, which the caller handles."""
    from google.api_core import exceptions as api_errors
    from google.auth import exceptions as auth_errors

    try:
        yield
    except passing:
        raise
    except (api_errors.TooManyRequests, api_errors.ServerError, api_errors.RetryError,
            auth_errors.GoogleAuthError) as error:
        raise ServiceUnavailable("cloud tasks is unavailable") from error
    except api_errors.GoogleAPICallError as error:
        # A missing or paused queue, or a refused permission: the vendor message, which names the queue,
        # stays in the cause for the logs.
        raise UpstreamError(f"cloud tasks refused the request for {queue_path!r}") from error
