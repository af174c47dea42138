"""Circuit breakers (common.breakers): what opens them, what they answer while open, and the probe that closes them.

pybreaker reads the wall clock itself, so the reset times here are short and real.
"""

from __future__ import annotations

import time

import pytest

from common.breakers import BreakerRegistry, registry_for
from common.breakers.failures import is_backend_outage, is_postgres_outage
from common.breakers.names import model_deployment, postgres_connection, public_name
from common.breakers.port import BackendUnavailable, GuardedPort
from common.config import Settings
from common.errors import (
    BadRequest,
    DependencyUnavailable,
    NotFound,
    RateLimited,
    ServiceUnavailable,
    UpstreamError,
)

RESET = 0.3


class FlakyStore:
    """A port double whose backend is down while ``down`` is set; it counts the calls that reached it."""

    def __init__(self):
        self.down = False
        self.calls = 0
        self.label = "flaky"

    def get(self, key: str) -> bytes:
        self.calls += 1
        if self.down:
            raise ServiceUnavailable("the store is unavailable")
        if key == "missing":
            raise NotFound(f"no object at {key!r}")
        return b"value"

    def close(self) -> None:
        self.calls += 1


@pytest.fixture
def registry() -> BreakerRegistry:
    return BreakerRegistry(failure_threshold=3, reset_seconds=RESET)


def test_a_run_of_outages_opens_the_breaker_and_calls_then_fail_at_once(registry):
    store = FlakyStore()
    port = GuardedPort(store, registry.guard("blobs"))
    store.down = True
    for _ in range(3):
        with pytest.raises(ServiceUnavailable) as raised:
            port.get("a")
        assert not isinstance(raised.value, DependencyUnavailable)
    with pytest.raises(BackendUnavailable) as raised:
        port.get("a")
    assert store.calls == 3  # the fourth call never reached the backend
    error = raised.value
    assert (error.status, error.code, error.details["dependency"]) == (503, "DEPENDENCY_UNAVAILABLE", "blobs")
    assert error.retry_after == 1
    assert registry.open_breakers() == [{"dependency": "blobs", "retry_after": 1}]


def test_the_probe_after_the_reset_time_closes_the_breaker_when_the_backend_is_back(registry):
    store = FlakyStore()
    port = GuardedPort(store, registry.guard("metadata"))
    store.down = True
    for _ in range(3):
        with pytest.raises(ServiceUnavailable):
            port.get("a")
    store.down = False
    with pytest.raises(DependencyUnavailable):
        port.get("a")
    time.sleep(RESET + 0.05)
    assert port.get("a") == b"value"
    assert registry.guard("metadata").state == "closed" and registry.open_breakers() == []


def test_a_failed_probe_opens_the_breaker_again_for_another_reset_time(registry):
    store = FlakyStore()
    port = GuardedPort(store, registry.guard("tasks"))
    store.down = True
    for _ in range(3):
        with pytest.raises(ServiceUnavailable):
            port.get("a")
    time.sleep(RESET + 0.05)
    with pytest.raises(ServiceUnavailable) as raised:
        port.get("a")  # the probe reaches the backend, which is still down
    assert not isinstance(raised.value, DependencyUnavailable)
    calls = store.calls
    with pytest.raises(DependencyUnavailable):
        port.get("a")
    assert store.calls == calls


def test_a_callers_mistake_is_an_answer_and_ends_the_run_of_outages(registry):
    store = FlakyStore()
    port = GuardedPort(store, registry.guard("blobs"))
    for _ in range(5):
        store.down = True
        for _ in range(2):
            with pytest.raises(ServiceUnavailable):
                port.get("a")
        store.down = False
        with pytest.raises(NotFound):
            port.get("missing")  # the backend answered: two outages, then not a third in a row
    assert registry.guard("blobs").state == "closed"


def test_attributes_and_close_pass_through_an_open_breaker(registry):
    store = FlakyStore()
    port = GuardedPort(store, registry.guard("tasks"))
    store.down = True
    for _ in range(3):
        with pytest.raises(ServiceUnavailable):
            port.get("a")
    assert port.label == "flaky"
    port.close()  # releasing what the instance holds is no call to the backend
    assert store.calls == 4


def test_each_dependency_has_its_own_breaker(registry):
    down, up = FlakyStore(), FlakyStore()
    down.down = True
    down_port, up_port = GuardedPort(down, registry.guard("blobs")), GuardedPort(up, registry.guard("metadata"))
    for _ in range(4):
        with pytest.raises(ServiceUnavailable):
            down_port.get("a")
    assert up_port.get("a") == b"value"
    assert [entry["dependency"] for entry in registry.open_breakers()] == ["blobs"]


def test_what_counts_as_an_outage():
    assert is_backend_outage(ServiceUnavailable("down")) and is_backend_outage(TimeoutError())
    assert not is_backend_outage(NotFound("no blob")) and not is_backend_outage(BadRequest("bad key"))
    assert not is_backend_outage(DependencyUnavailable("cache"))
    assert is_postgres_outage(UpstreamError("refused", code="PG_UNREACHABLE"))
    assert is_postgres_outage(ServiceUnavailable("shutting down", code="PG_UNAVAILABLE"))
    for mistake in (UpstreamError("bad password", code="PG_AUTH_FAILED"), BadRequest("bad SQL", code="SQL_ERROR"),
                    ServiceUnavailable("every connection is busy")):
        assert not is_postgres_outage(mistake)


def test_dependency_unavailable_is_a_503_with_retry_after():
    error = DependencyUnavailable("postgres:alice/sales", retry_after=12)
    assert isinstance(error, RateLimited)  # the router sends its Retry-After
    assert (error.status, error.code, error.retry_after) == (503, "DEPENDENCY_UNAVAILABLE", 12)
    assert error.details == {"dependency": "postgres:alice/sales", "retry_after": 12}
    # A model's or a database's refusal ends a question as their own failure would; a backend's is handled as
    # that backend's outage is (the answer cache carries on without it, a stage goes back to the queue).
    assert not isinstance(error, ServiceUnavailable)
    backend = BackendUnavailable("cache", retry_after=2)
    assert isinstance(backend, ServiceUnavailable) and (backend.status, backend.code) == (503, "DEPENDENCY_UNAVAILABLE")


def test_names_keep_credentials_out():
    assert model_deployment("openai/gpt-4o", None) == "model:openai/gpt-4o@default"
    assert model_deployment("openai/gpt-4o", None, "alice") == "model:openai/gpt-4o@default for alice"
    assert model_deployment("openai/m", "https://user:secret@llm.example.com:8443/v1/?key=k") == \
        "model:openai/m@https://llm.example.com:8443/v1"
    assert postgres_connection("alice", "sales") == "postgres:alice/sales"
    # What the unauthenticated readiness report shows: the kind and model, no tenant, endpoint or connection.
    assert public_name("model:openai/m@https://llm.example.com:8443/v1 for alice") == "model:openai/m"
    assert (public_name("postgres:alice/sales"), public_name("metadata")) == ("postgres", "metadata")


def test_one_registry_per_settings_and_settings_validated():
    settings = Settings.from_env({}, breaker_failure_threshold=2, breaker_reset_seconds=5.0)
    assert registry_for(settings) is registry_for(settings)
    assert registry_for(settings) is not registry_for(settings.replace())
    assert (registry_for(settings).failure_threshold, registry_for(settings).reset_seconds) == (2, 5.0)
    with pytest.raises(Exception, match="BREAKER_FAILURE_THRESHOLD"):
        Settings.from_env({"BREAKER_FAILURE_THRESHOLD": "0"})


def test_the_registry_keeps_a_bounded_number_of_breakers_dropping_closed_ones_first():
    """A tenant naming a new endpoint with every request must not grow an instance's breakers without end."""
    registry = BreakerRegistry(failure_threshold=1, reset_seconds=60, max_breakers=3)
    registry.guard("model:a").failed()  # open: kept while closed ones can go
    for number in range(100):
        registry.guard(f"model:endpoint-{number}")
    assert len(registry._guards) == 3
    assert "model:a" in registry._guards
    assert [entry["dependency"] for entry in registry.open_breakers()] == ["model:a"]
    for number in range(3):  # every one open: the oldest goes
        registry.guard(f"model:down-{number}").failed()
    assert list(registry._guards) == ["model:down-0", "model:down-1", "model:down-2"]
