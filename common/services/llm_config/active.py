"""A tenant's active choice: one provider, its model and call parameters, the default of model-less questions.

One record per tenant, so exactly one provider is active at a time (the original could mark several, D16).
A model is optional only while the original frontend is between saving a key and choosing its model.
"""

from __future__ import annotations

from typing import Any

from common import errors
from common.auth import Tenant
from common.metadata import MetadataStore, Record

COLLECTION = "llm_active"
KEY = "active"


def set_active(metadata: MetadataStore, tenant: Tenant, provider: str, model: str | None,
               params: dict[str, Any]) -> Record:
    """Make ``provider`` (and ``model``, already checked against it) the tenant's active choice."""
    return metadata.put(COLLECTION, tenant.user_id, KEY, {"provider": provider, "model": model, "params": params})


def activate_provider(metadata: MetadataStore, tenant: Tenant, provider: str) -> Record:
    """Make ``provider`` active, keeping the chosen model and params when it already was."""
    current = get_active(metadata, tenant)
    if current is not None and current.data["provider"] == provider:
        return current
    return set_active(metadata, tenant, provider, None, {})


def get_active(metadata: MetadataStore, tenant: Tenant) -> Record | None:
    """Return the tenant's active choice, or None."""
    try:
        return metadata.get(COLLECTION, tenant.user_id, KEY)
    except errors.NotFound:
        return None


def active_choice(metadata: MetadataStore, tenant: Tenant) -> dict[str, Any]:
    """Return ``{"default_model", "default_params"}`` for ``parse_question`` from the tenant's active choice."""
    record = get_active(metadata, tenant)
    if record is None:
        return {"default_model": None, "default_params": {}}
    return {"default_model": record.data.get("model"), "default_params": record.data.get("params") or {}}


def clear_active(metadata: MetadataStore, tenant: Tenant, *, provider: str | None = None) -> bool:
    """Forget the active choice (only when it names ``provider``, if given); tell whether one was removed."""
    record = get_active(metadata, tenant)
    if record is None or (provider is not None and record.data["provider"] != provider):
        return False
    try:
        metadata.delete(COLLECTION, tenant.user_id, KEY, expected_revision=record.revision)
    except (errors.NotFound, errors.Conflict):
        return False  # changed meanwhile: the newer choice stands
    return True


def active_view(record: Record) -> dict[str, Any]:
    """Return the active choice as the API shows it."""
    return {"provider": record.data["provider"], "model": record.data.get("model"),
            "params": record.data.get("params") or {}, "updated_at": record.updated_at.isoformat()}
