"""Build the emulator's WSGI app: one functions-framework app per function, dispatched by path."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from common.gateway import RouteTable, route_table

if TYPE_CHECKING:
    from common.bootstrap import Context
    from common.config import Settings

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FUNCTIONS_DIR = os.path.join(REPO_ROOT, "functions")


def function_source(name: str) -> str:
    return os.path.join(FUNCTIONS_DIR, name, "main.py")


def deployed_functions() -> list[str]:
    """Every function in the source tree, as Terraform deploys them (``functions/*/main.py``)."""
    return sorted(name for name in os.listdir(FUNCTIONS_DIR) if os.path.exists(function_source(name)))


def load_function_apps(names: Iterable[str] | None = None) -> dict[str, Any]:
    """Create each function's app through its real functions-framework entry point."""
    import functions_framework

    return {name: functions_framework.create_app(target=name, source=function_source(name), signature_type="http")
            for name in (deployed_functions() if names is None else names) if os.path.exists(function_source(name))}


class GatewayDispatcher:
    """A WSGI app that hands each request to the function API Gateway would pick for its path."""

    def __init__(self, apps: dict[str, Any], table: RouteTable):
        self.apps = apps
        self.table = table

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        name = self.table.resolve(environ.get("PATH_INFO", "/"))
        app = self.apps.get(name)
        if app is None:
            body = json.dumps({"error": {"code": "NOT_FOUND", "message": f"function {name!r} is not deployed",
                                         "details": {}}}).encode()
            start_response("404 NOT FOUND", [("Content-Type", "application/json"),
                                             ("Content-Length", str(len(body)))])
            return [body]
        return app(environ, start_response)


def build_gateway() -> GatewayDispatcher:
    """Load every function and return the dispatcher that routes to them."""
    return GatewayDispatcher(load_function_apps(), route_table())


def local_context(settings: Settings, apps: dict[str, Any], **parts: Any) -> Context:
    """The emulator's context: local secrets, and a task queue that delivers to the agents function."""
    from common import bootstrap
    from common.clock import SystemClock
    from common.tasks.local import LocalTaskQueue, wsgi_deliverer
    from local_emulator.secrets import with_local_secrets

    settings = with_local_secrets(settings)
    clock = parts.pop("clock", None) or SystemClock()
    if settings.tasks_backend == "local" and "agents" in apps and "tasks" not in parts:
        # Straight to the agents function, as Cloud Tasks does: API Gateway does not route /tasks/*.
        parts["tasks"] = LocalTaskQueue(wsgi_deliverer(apps["agents"]), clock=clock, queue_name="agents",
                                        max_attempts=settings.tasks_max_attempts)
    return bootstrap.build(settings, clock=clock, **parts)
