"""The name of each dependency's breaker: what ``details.dependency`` and the readiness report show."""

from __future__ import annotations

import urllib.parse

BLOBS, METADATA, CACHE, TASKS = "blobs", "metadata", "cache", "tasks"


def model_deployment(model_id: str, api_base: str | None, scope: str = "") -> str:
    """Name one model deployment: the model id (provider included) at its endpoint (the provider's own: default),
    as the tenant ``scope`` calls it (a tenant's failures open only that tenant's breaker)."""
    where = _endpoint(api_base) if api_base else "default"
    return f"model:{model_id}@{where}" + (f" for {scope}" if scope else "")


def public_name(name: str) -> str:
    """What anyone may see of a breaker's name (the readiness report): no tenant, endpoint or connection name."""
    kind, _, rest = name.partition(":")
    if kind == "model":
        return f"model:{rest.split('@')[0]}"
    return kind if kind == "postgres" else name


def postgres_connection(user_id: str, connection: str) -> str:
    """Name one saved Postgres connection of one user."""
    return f"postgres:{user_id}/{connection}"


def _endpoint(api_base: str) -> str:
    # Scheme, host, port and path: never credentials a URL may carry (user:password@, a ?key= query).
    parts = urllib.parse.urlsplit(api_base)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path.rstrip('/')}"
