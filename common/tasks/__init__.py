"""The task queue port: named HTTP tasks, each delivered at least once to a path on the `agents` function.

Each stage of a query is one task. In the cloud it is a Cloud Task whose HTTP target is the agents function
(``common.tasks.cloud.CloudTasksQueue``); locally the emulator's dispatcher POSTs it to the same function in
process (``common.tasks.local.LocalTaskQueue``).

Invariants every adapter keeps (``tests/contract/test_task_queue.py`` checks them on every backend):
- Delivery is at least once: a task may arrive twice (a lost acknowledgement, a redelivery), so every target
  must be idempotent.
- Names de-duplicate: ``enqueue`` of a name that is queued, or that ran or was deleted within the retention
  window (Cloud Tasks: up to a few hours; ``LocalTaskQueue``: ``retention_seconds``), creates nothing and
  returns False. A retried stage that enqueues its successor twice therefore creates one task.
- The request is ``POST <target base URL><path>`` with the payload as a JSON body
  (``Content-Type: application/json``) and the headers ``X-CloudTasks-TaskName`` (the short name),
  ``X-CloudTasks-QueueName``, ``X-CloudTasks-TaskRetryCount`` (0 on the first attempt) and
  ``X-CloudTasks-TaskExecutionCount``.
- A 2xx response acknowledges the task. Any other status, a timeout or a connection error is retried with
  exponential backoff, up to ``max_attempts`` attempts in all; then the task is dropped.
- ``delay_seconds`` postpones the first attempt by at least that long.
- ``delete`` drops a task that has not started and stops the retries of one that has; deleting a task that
  already ran or never existed is not an error. A deleted name stays taken for the retention window.
- An unreachable backend raises ``common.errors.ServiceUnavailable``, never a vendor exception.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from typing import Any, Protocol

TASK_NAME_HEADER = "X-CloudTasks-TaskName"
QUEUE_NAME_HEADER = "X-CloudTasks-QueueName"
RETRY_COUNT_HEADER = "X-CloudTasks-TaskRetryCount"
EXECUTION_COUNT_HEADER = "X-CloudTasks-TaskExecutionCount"
ETA_HEADER = "X-CloudTasks-TaskETA"

# Cloud Tasks allows these characters in a task id; the length leaves room for the queue path in the full name.
_TASK_NAME = re.compile(r"[A-Za-z0-9_-]{1,400}")
_PATH = re.compile(r"/[!-~]{0,2047}")  # printable ASCII, no spaces
# Cloud Tasks refuses a schedule time more than 30 days ahead and a task larger than 1 MB.
MAX_DELAY_SECONDS = 30 * 24 * 3600
MAX_BODY_BYTES = 1024 * 1024


def check_task_name(name: str) -> str:
    """Return ``name`` if it is a valid task name ([A-Za-z0-9_-], 1 to 400 characters), else raise ValueError."""
    if not isinstance(name, str) or not _TASK_NAME.fullmatch(name):
        raise ValueError(f"invalid task name {name!r}: use 1 to 400 of [A-Za-z0-9_-]")
    return name


@dataclasses.dataclass(frozen=True)
class Task:
    """One stage to run: POST ``payload`` as JSON to ``path`` on the agents function."""

    name: str  # stable id that de-duplicates, e.g. f"{query_id}-compile"
    path: str  # e.g. "/tasks/plan"
    payload: dict[str, Any]
    delay_seconds: float = 0

    def __post_init__(self) -> None:
        check_task_name(self.name)
        if not isinstance(self.path, str) or not _PATH.fullmatch(self.path):
            raise ValueError(f"invalid task path {self.path!r}: it must start with / and hold no spaces")
        if not isinstance(self.payload, dict):
            raise ValueError("a task payload must be a dict")
        delay = self.delay_seconds
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not math.isfinite(delay) \
                or not 0 <= delay <= MAX_DELAY_SECONDS:
            raise ValueError(f"delay_seconds must be between 0 and {MAX_DELAY_SECONDS}, got {delay!r}")
        if len(self.body()) > MAX_BODY_BYTES:
            raise ValueError(f"task {self.name!r}: payload larger than {MAX_BODY_BYTES} bytes")

    def body(self) -> bytes:
        """Return the payload as the JSON request body."""
        try:
            return json.dumps(self.payload, separators=(",", ":"), allow_nan=False).encode()
        except (TypeError, ValueError) as error:
            raise ValueError(f"task {self.name!r}: payload is not JSON: {error}") from None


class TaskQueue(Protocol):
    """Delivers named tasks to the agents function; see the module docstring for invariants."""

    def enqueue(self, task: Task) -> bool:
        """Queue ``task``; return False, creating nothing, when its name is taken (queued or recently used)."""

    def delete(self, name: str) -> None:
        """Drop the task if it has not run yet; no error when it already ran or never existed."""

    def ping(self) -> None:
        """Raise ``ServiceUnavailable`` when the queue cannot take tasks."""
