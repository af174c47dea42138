"""Test-wide set-up: no traffic leaves loopback, and real services are found through the environment.

`make test` starts Postgres, Redis, the Firestore emulator and the GCS emulator where they are not running
and exports where they listen (see tests/services.py). A test that needs a service calls
``require_service``: it skips when the service is absent, unless STRICT_SERVICES=1 (CI), where an absent
service the machine should provide is a failure, so a green run never hides a skipped tier.
"""

from __future__ import annotations

import os
import uuid

import pytest

# Before any Google or LiteLLM import: no metadata-server probe, no price-list download.
os.environ.setdefault("NO_GCE_CHECK", "true")
os.environ.setdefault("GOOGLE_CLOUD_PROJECT", "test-proj")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def require_service(env_var: str, what: str) -> str:
    """Return the service address from ``env_var``, or skip (fail under STRICT_SERVICES=1) without it."""
    value = os.environ.get(env_var, "")
    if value:
        return value
    message = f"{what} not available: {env_var} is not set (run the tests through `make test`)"
    if os.environ.get("STRICT_SERVICES") == "1" and env_var not in _optional_in_strict():
        pytest.fail(message)
    pytest.skip(message)


def _optional_in_strict() -> set[str]:
    # A service this machine kind cannot provide (tests/services.py found no emulator) is listed here.
    return set(filter(None, os.environ.get("SERVICES_UNAVAILABLE", "").split(",")))


@pytest.fixture
def unique_prefix() -> str:
    """A fresh namespace for one test, so runs never see each other's data."""
    return f"t{uuid.uuid4().hex[:12]}"
