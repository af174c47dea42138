"""The TaskQueue contract (see ``common/tasks/__init__.py``), checked on every backend against a real HTTP target.

``local`` is the emulator's dispatcher POSTing over HTTP; ``cloudtasks`` is the Cloud Tasks adapter against
gcloud-tasks-emulator (TASKS_EMULATOR_HOST), with a fresh queue per test. That emulator has no duplicate-name
check, no DeleteTask and no backoff, so the tests of those skip on it, saying so; the LOCAL-ONLY section checks
the dispatcher's own promises with a fake clock, and the CLOUD TASKS ADAPTER section checks, with a recording
client, what the emulator cannot show (ALREADY_EXISTS, OIDC tokens, error translation).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
import time
import uuid

import pytest
from werkzeug.datastructures import Headers
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from common.clock import FakeClock
from common.errors import ServiceUnavailable, UpstreamError
from common.tasks import Task
from common.tasks.cloud import CloudTasksQueue
from common.tasks.local import LocalTaskQueue, backoff_seconds, http_deliverer, wsgi_deliverer
from tests.conftest import require_service

NAME, QUEUE, RETRIES, EXECUTIONS = ("X-CloudTasks-TaskName", "X-CloudTasks-QueueName",
                                    "X-CloudTasks-TaskRetryCount", "X-CloudTasks-TaskExecutionCount")
EMULATOR_HAS_NO_DELETE = "gcloud-tasks-emulator does not implement DeleteTask"


@dataclasses.dataclass
class Received:
    path: str
    headers: Headers
    payload: dict
    at: float  # wall-clock seconds, comparable with the schedule time the adapters compute


class Target:
    """A real HTTP server on loopback that records each request and can fail the first N of a task."""

    def __init__(self):
        self.received: list[Received] = []
        self.failures: dict[str, int] = {}
        self._cond = threading.Condition()
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @Request.application
    def _app(self, request: Request) -> Response:
        with self._cond:
            self.received.append(Received(request.path, Headers(list(request.headers.items())),
                                          json.loads(request.get_data() or b"null"), time.time()))
            self._cond.notify_all()
            name = request.headers.get(NAME, "")
            if self.failures.get(name, 0) > 0:
                self.failures[name] -= 1
                return Response("try again", 500)
        return Response("ok", 200)

    def wait_for(self, count: int, timeout: float = 15) -> list[Received]:
        """Return the first ``count`` requests, failing the test if they do not arrive in time."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.received) >= count, timeout):
                pytest.fail(f"expected {count} deliveries within {timeout} s, got {len(self.received)}")
            return list(self.received[:count])

    def names(self) -> list[str]:
        with self._cond:
            return [item.headers[NAME] for item in self.received]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture
def target():
    server = Target()
    yield server
    server.stop()


def _emulator_client(host: str):
    import grpc
    from google.cloud.tasks_v2 import CloudTasksClient
    from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

    return CloudTasksClient(transport=CloudTasksGrpcTransport(channel=grpc.insecure_channel(host)))


@pytest.fixture(params=["local", "cloudtasks"])
def queue(request, target):
    if request.param == "local":
        with LocalTaskQueue(http_deliverer(target.url), queue_name="agents", min_backoff=0.01,
                            max_backoff=0.05) as local:
            yield local
        return
    client = _emulator_client(require_service("TASKS_EMULATOR_HOST", "Cloud Tasks emulator"))
    parent, queue_id = "projects/test-proj/locations/test-location", f"agents-{uuid.uuid4().hex[:12]}"
    client.create_queue(parent=parent, queue={"name": f"{parent}/queues/{queue_id}"})
    yield CloudTasksQueue("test-proj", "test-location", queue_id, target.url, "", client=client)
    client.delete_queue(name=f"{parent}/queues/{queue_id}")  # the emulator stops delivering to a deleted queue
    client.transport.close()


def _queue_id(queue) -> str:
    return queue.queue_path.rsplit("/", 1)[-1] if isinstance(queue, CloudTasksQueue) else "agents"


def _skip_on_emulator(queue, reason: str) -> None:
    if isinstance(queue, CloudTasksQueue):
        pytest.skip(reason)


# --- The contract, on every backend --------------------------------------------------------------------------

def test_a_task_is_delivered_with_its_json_payload_and_the_cloud_tasks_headers(queue, target):
    payload = {"query_id": "q1", "stage": "plan", "text": "ünïcode ✓", "n": [1, 2.5, None]}

    assert queue.enqueue(Task("q1-plan", "/tasks/plan", payload)) is True

    [received] = target.wait_for(1)
    assert received.path == "/tasks/plan"
    assert received.payload == payload
    assert received.headers["Content-Type"] == "application/json"
    assert received.headers[NAME] == "q1-plan"
    # Cloud Tasks sends the queue id; the emulator sends the whole queue path.
    assert received.headers[QUEUE].rsplit("/", 1)[-1] == _queue_id(queue)
    assert (received.headers[RETRIES], received.headers[EXECUTIONS]) == ("0", "0")


def test_a_failing_target_is_retried_until_it_answers_2xx(queue, target):
    target.failures["q2-analyze"] = 2

    queue.enqueue(Task("q2-analyze", "/tasks/analyze", {"attempt": "any"}))

    attempts = target.wait_for(3)
    assert [item.headers[RETRIES] for item in attempts] == ["0", "1", "2"]
    assert all(item.payload == {"attempt": "any"} for item in attempts)
    assert all(0 <= int(item.headers[EXECUTIONS]) <= int(item.headers[RETRIES]) for item in attempts)


def test_delay_postpones_the_first_attempt(queue, target):
    started = time.time()

    queue.enqueue(Task("q3-later", "/tasks/plan", {}, delay_seconds=0.5))

    [received] = target.wait_for(1)
    assert received.at >= started + 0.5 - 0.01  # datetimes keep microseconds only


def test_enqueueing_a_name_twice_delivers_it_once(queue, target):
    _skip_on_emulator(queue, "gcloud-tasks-emulator has no duplicate-name check (Cloud Tasks: ALREADY_EXISTS, "
                             "covered below with a recording client)")
    assert queue.enqueue(Task("q4-compile", "/tasks/compile", {"from": "visualize"})) is True
    assert queue.enqueue(Task("q4-compile", "/tasks/compile", {"from": "analyze"})) is False

    assert queue.drain(10)
    assert [item.payload for item in target.received] == [{"from": "visualize"}]
    # Still taken after it ran: a late duplicate from a redelivered stage creates nothing.
    assert queue.enqueue(Task("q4-compile", "/tasks/compile", {})) is False


def test_delete_before_delivery_prevents_it(queue, target):
    _skip_on_emulator(queue, EMULATOR_HAS_NO_DELETE)
    queue.enqueue(Task("q5-deleted", "/tasks/plan", {}, delay_seconds=0.3))
    queue.enqueue(Task("q5-marker", "/tasks/plan", {}, delay_seconds=0.4))

    queue.delete("q5-deleted")

    target.wait_for(1)  # the marker, due after the deleted task would have been
    assert target.names() == ["q5-marker"]


def test_deleting_a_finished_or_unknown_task_is_not_an_error(queue, target):
    _skip_on_emulator(queue, EMULATOR_HAS_NO_DELETE)
    queue.enqueue(Task("q6-done", "/tasks/plan", {}))
    target.wait_for(1)

    queue.delete("q6-done")
    queue.delete("never-enqueued")


def test_ping_answers_when_the_backend_is_up(queue):
    queue.ping()


# --- LOCAL-ONLY: the dispatcher's own promises (the emulator has no backoff, no delete) -------------------------

def test_retry_waits_at_least_double_each_time(target):
    target.failures["backoff"] = 3
    with LocalTaskQueue(http_deliverer(target.url), min_backoff=0.05, max_backoff=10) as queue:
        queue.enqueue(Task("backoff", "/tasks/plan", {}))
        attempts = target.wait_for(4)

    gaps = [later.at - earlier.at for earlier, later in zip(attempts, attempts[1:], strict=False)]
    # Lower bounds only: a slow machine may add to a wait, never take from it.
    assert [gap >= 0.05 * 2 ** index for index, gap in enumerate(gaps)] == [True, True, True], gaps


@pytest.mark.parametrize("jitter", [0.0, 0.999])
def test_backoff_doubles_then_stops_at_the_cap(jitter):
    waits = [backoff_seconds(retry, min_backoff=0.1, max_backoff=1.0, jitter=jitter) for retry in range(1, 8)]

    assert waits[0] >= 0.1 and all(later > earlier for earlier, later in zip(waits[:4], waits[1:4], strict=False))
    assert max(waits) == 1.0 and waits[-1] == 1.0


def test_gives_up_after_max_attempts(target):
    target.failures["hopeless"] = 100
    with LocalTaskQueue(http_deliverer(target.url), max_attempts=3, min_backoff=0.01, max_backoff=0.02) as queue:
        queue.enqueue(Task("hopeless", "/tasks/plan", {}))
        assert queue.drain(10)

    assert target.names() == ["hopeless"] * 3


def test_an_unreachable_target_is_retried(target):
    calls = []
    real_deliver = http_deliverer(target.url)

    def flaky(path, body, headers):
        calls.append(headers[RETRIES])
        if len(calls) == 1:
            raise ConnectionRefusedError("agents is restarting")
        return real_deliver(path, body, headers)

    with LocalTaskQueue(flaky, min_backoff=0.01) as queue:
        queue.enqueue(Task("flaky", "/tasks/plan", {}))
        assert queue.drain(10)

    assert calls == ["0", "1"] and target.names() == ["flaky"]


def test_a_delayed_task_waits_for_the_clock_without_holding_a_worker(target):
    clock = FakeClock()
    with LocalTaskQueue(http_deliverer(target.url), clock=clock, workers=1) as queue:
        queue.enqueue(Task("in-an-hour", "/tasks/plan", {}, delay_seconds=3600))
        queue.enqueue(Task("now", "/tasks/plan", {}))
        target.wait_for(1)
        assert not queue.drain(0.3)
        assert target.names() == ["now"]

        clock.advance(3600)
        assert queue.drain(10)

    assert target.names() == ["now", "in-an-hour"]


def test_a_slow_task_does_not_hold_up_the_others():
    fast_delivered, order = threading.Event(), []

    def deliver(path, body, headers):
        if headers[NAME] == "slow":
            fast_delivered.wait(10)  # a long LLM stage, still running when the fast one arrives
        else:
            fast_delivered.set()
        order.append(headers[NAME])
        return 200

    with LocalTaskQueue(deliver, workers=2) as queue:
        queue.enqueue(Task("slow", "/tasks/plan", {}))
        queue.enqueue(Task("fast", "/tasks/plan", {}))
        assert queue.drain(20)

    assert order == ["fast", "slow"]


def test_delete_stops_the_retries_of_a_started_task(target):
    clock = FakeClock()
    target.failures["cancelled"] = 100
    with LocalTaskQueue(http_deliverer(target.url), clock=clock, min_backoff=10, max_backoff=10) as queue:
        queue.enqueue(Task("cancelled", "/tasks/plan", {}))
        target.wait_for(1)

        queue.delete("cancelled")
        clock.advance(60)
        assert queue.drain(10)

    assert target.names() == ["cancelled"]


def test_a_name_is_free_again_after_the_retention_window(target):
    clock = FakeClock()
    with LocalTaskQueue(http_deliverer(target.url), clock=clock, retention_seconds=600) as queue:
        queue.enqueue(Task("reused", "/tasks/plan", {"run": 1}))
        assert queue.drain(10)
        clock.advance(599)
        assert queue.enqueue(Task("reused", "/tasks/plan", {"run": 2})) is False

        clock.advance(2)
        assert queue.enqueue(Task("reused", "/tasks/plan", {"run": 3})) is True
        assert queue.drain(10)

    assert [item.payload for item in target.received] == [{"run": 1}, {"run": 3}]


def test_a_closed_queue_refuses_tasks_and_is_not_ready(target):
    queue = LocalTaskQueue(http_deliverer(target.url), clock=FakeClock())
    queue.enqueue(Task("dropped", "/tasks/plan", {}, delay_seconds=60))
    queue.close()

    with pytest.raises(ServiceUnavailable):
        queue.enqueue(Task("late", "/tasks/plan", {}))
    with pytest.raises(ServiceUnavailable):
        queue.ping()
    assert target.received == []


def test_the_wsgi_deliverer_calls_the_app_in_process():
    seen = []

    @Request.application
    def agents(request: Request) -> Response:
        seen.append((request.path, request.headers[NAME], request.get_json()))
        return Response("ok", 200)

    with LocalTaskQueue(wsgi_deliverer(agents)) as queue:
        queue.enqueue(Task("in-process", "/tasks/plan", {"query_id": "q9"}))
        assert queue.drain(10)

    assert seen == [("/tasks/plan", "in-process", {"query_id": "q9"})]


@pytest.mark.parametrize("field,value", [
    ("name", "has space"), ("name", "a/b"), ("name", ""), ("name", "x" * 401), ("path", "tasks/plan"),
    ("path", "/a b"), ("payload", {"bad": float("nan")}), ("payload", {"bad": object()}),
    ("delay_seconds", -1), ("delay_seconds", float("inf")),
])
def test_an_invalid_task_is_refused_before_it_is_queued(field, value):
    fields = {"name": "ok", "path": "/tasks/plan", "payload": {}, field: value}

    with pytest.raises(ValueError):
        Task(**fields)


# --- CLOUD TASKS ADAPTER: what the emulator cannot show, through a recording client ----------------------------

class RecordingClient:
    """Stands in for CloudTasksClient: records requests, raises what a test tells it to."""

    def __init__(self, error: Exception | None = None):
        self.calls: list[tuple[str, dict]] = []
        self.error = error

    def _call(self, method: str, **kwargs):
        self.calls.append((method, kwargs))
        if self.error is not None:
            raise self.error

    def create_task(self, **kwargs):
        return self._call("create_task", **kwargs)

    def delete_task(self, **kwargs):
        return self._call("delete_task", **kwargs)

    def get_queue(self, **kwargs):
        return self._call("get_queue", **kwargs)


def _cloud(client, service_account="agents-invoker@p.iam.gserviceaccount.com", clock=None):
    return CloudTasksQueue("p", "europe-west1", "agents", "https://agents.example.run.app/", service_account,
                           client=client, clock=clock)


def test_cloud_task_is_an_oidc_signed_http_post_scheduled_by_the_clock():
    client, clock = RecordingClient(), FakeClock()

    assert _cloud(client, clock=clock).enqueue(Task("q1-plan", "/tasks/plan", {"a": 1}, delay_seconds=30))

    [(method, kwargs)] = client.calls
    task = kwargs["request"]["task"]
    assert kwargs["request"]["parent"] == "projects/p/locations/europe-west1/queues/agents"
    assert task["name"] == "projects/p/locations/europe-west1/queues/agents/tasks/q1-plan"
    assert task["schedule_time"] == clock.now() + dt.timedelta(seconds=30)
    assert task["http_request"]["url"] == "https://agents.example.run.app/tasks/plan"
    assert task["http_request"]["body"] == b'{"a":1}'
    assert task["http_request"]["oidc_token"] == {"service_account_email": "agents-invoker@p.iam.gserviceaccount.com",
                                                  "audience": "https://agents.example.run.app"}


def test_cloud_task_without_a_service_account_carries_no_token():
    client = RecordingClient()
    _cloud(client, service_account="").enqueue(Task("q1-plan", "/tasks/plan", {}))

    task = client.calls[0][1]["request"]["task"]
    assert "oidc_token" not in task["http_request"] and "schedule_time" not in task


def test_cloud_already_exists_means_not_enqueued_again():
    from google.api_core.exceptions import AlreadyExists

    assert _cloud(RecordingClient(AlreadyExists("task exists"))).enqueue(Task("dup", "/tasks/plan", {})) is False


def test_cloud_delete_of_a_missing_task_is_not_an_error():
    from google.api_core.exceptions import NotFound

    client = RecordingClient(NotFound("no such task"))
    _cloud(client).delete("gone")

    assert client.calls[0][1]["name"] == "projects/p/locations/europe-west1/queues/agents/tasks/gone"


@pytest.mark.parametrize("error,expected", [
    ("ServiceUnavailable", ServiceUnavailable), ("TooManyRequests", ServiceUnavailable),
    ("PermissionDenied", UpstreamError), ("FailedPrecondition", UpstreamError),
])
def test_cloud_errors_are_translated_at_the_boundary(error, expected):
    from google.api_core import exceptions as api_errors

    queue = _cloud(RecordingClient(getattr(api_errors, error)("vendor detail")))

    with pytest.raises(expected):
        queue.enqueue(Task("t", "/tasks/plan", {}))
    with pytest.raises(expected):
        queue.delete("t")
    with pytest.raises(ServiceUnavailable):
        queue.ping()


def test_cloud_ping_fails_when_nothing_listens():
    import socket

    with socket.socket() as sock:  # a port that was free a moment ago, and nothing listens on now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = _emulator_client(f"127.0.0.1:{port}")
    try:
        with pytest.raises(ServiceUnavailable):
            _cloud(client).ping()
    finally:
        client.transport.close()
