"""Path -> function routing, as API Gateway does it; the table lives in ``gateway_routes.yaml``."""

from __future__ import annotations

import dataclasses
import functools
import os


@dataclasses.dataclass(frozen=True)
class Route:
    path: str
    function: str
    exact: bool


@dataclasses.dataclass(frozen=True)
class RouteTable:
    routes: tuple[Route, ...]
    fallback: str

    def resolve(self, path: str) -> str:
        """Return the name of the function that answers ``path``."""
        for route in self.routes:
            if route.exact:
                if path == route.path:
                    return route.function
            elif path == route.path or path.startswith(route.path.rstrip("/") + "/"):
                return route.function
        return self.fallback

    @property
    def functions(self) -> tuple[str, ...]:
        names = dict.fromkeys(route.function for route in self.routes)
        names[self.fallback] = None
        return tuple(names)


@functools.cache
def route_table() -> RouteTable:
    """Load the route table shipped beside this module."""
    import yaml

    with open(os.path.join(os.path.dirname(__file__), "gateway_routes.yaml"), encoding="utf-8") as handle:
        raw = yaml.safe_load(handle)
    routes = tuple(
        Route(path=entry.get("exact") or entry["prefix"], function=entry["function"], exact="exact" in entry)
        for entry in raw["routes"]
    )
    return RouteTable(routes=routes, fallback=raw["fallback"])
