"""The routers of the functions, as functions-framework loads them (for tests that compare routes)."""

from __future__ import annotations

import inspect
from typing import Any


def router_of(app: Any) -> Any:
    """The ``router`` of the module functions-framework loaded: the one that answers the app's requests."""
    entry_point = inspect.unwrap(app.view_functions["run"])
    router = entry_point.__globals__.get("router")
    assert router is not None, f"{entry_point.__module__}.{entry_point.__name__} has no module-level router"
    return router
