"""A backend port (blobs, metadata, cache, tasks) behind its breaker: every method call passes the breaker."""

from __future__ import annotations

import functools
from typing import Any

from common.breakers.failures import is_backend_outage
from common.breakers.guard import Guard
from common.errors import DependencyUnavailable, ServiceUnavailable

# Methods that release what the instance holds rather than call the backend: they work with the breaker open.
_LOCAL_METHODS = frozenset({"close"})


class BackendUnavailable(DependencyUnavailable, ServiceUnavailable):
    """A backend port's breaker is open. Also a ``ServiceUnavailable``, as the backend's own outage is: what
    carries on without the backend (the answer cache) or gives a stage back to the queue handles it the same."""


class GuardedPort:
    """Stands in for ``port``: attributes pass through, and each method call goes through ``guard``.

    A call that returns a stream or an iterator is judged when it returns: what fails while it is read later
    is the caller's to handle, as before.
    """

    def __init__(self, port: Any, guard: Guard):
        self._port = port
        self._guard = guard

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._port, name)
        if not callable(attribute) or name in _LOCAL_METHODS or name.startswith("_"):
            return attribute
        guard = self._guard

        @functools.wraps(attribute)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            return guard.call(attribute, *args, is_outage=is_backend_outage, refusal=BackendUnavailable, **kwargs)

        return guarded

    def __repr__(self) -> str:
        return f"GuardedPort({self._port!r}, breaker={self._guard.name!r})"
