"""A tenant's saved provider keys: one record per (tenant, provider), the key encrypted, shown only masked.

A record holds the key's Fernet ciphertext (``ENCRYPTION_KEYS``), its last four characters for display, an
optional endpoint, and the chat models that endpoint listed when the key was checked (``key_checks``; None
when the key was not checked at an endpoint: its models are then LiteLLM's map's). Neither the key nor its
ciphertext ever leaves this module except as the decrypted ``StoredKey`` a question's call needs (the
original sent the ciphertext to clients, LEGACY_API.md §6). Provider ids are lower-cased, so ``GEMINI`` and
``gemini`` are one key (D16).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Literal

from common import audit, errors
from common.auth import Tenant
from common.crypto import Encryptor
from common.llm import Credentials, LlmClient, LlmFailed, StoredKey
from common.metadata import MetadataStore, Record
from common.ports import SecretPorts
from common.services.llm_config import active, registry

COLLECTION = "llm_keys"
SaveMode = Literal["create", "replace", "upsert"]


def save_key(metadata: MetadataStore, encryptor: Encryptor, tenant: Tenant, provider: str, api_key: str | None,
             api_base: str | None, *, mode: SaveMode, served_models: Sequence[str] | None = None) -> Record:
    """Store a checked key for ``provider``: create (409 if one exists), replace (404 if none) or upsert.

    ``served_models``: the chat models its endpoint listed when the key was checked (full ids).
    """
    require_credentials(provider, api_key, api_base)
    data = {"provider": provider, "ciphertext": encryptor.encrypt(api_key) if api_key else None,
            "last4": api_key[-4:] if api_key else None, "api_base": api_base,
            "models": list(served_models) if served_models else None}
    if mode == "create":
        try:
            return metadata.put(COLLECTION, tenant.user_id, provider, data, expected_revision=None)
        except errors.Conflict:
            raise errors.Conflict(f"a key for {provider} is already saved: replace it with PUT",
                                  code="KEY_EXISTS") from None
    if mode == "replace":
        current = get_key(metadata, tenant, provider)
        return metadata.put(COLLECTION, tenant.user_id, provider, data, expected_revision=current.revision)
    return metadata.put(COLLECTION, tenant.user_id, provider, data)


def require_credentials(provider: str, api_key: str | None, api_base: str | None) -> None:
    """Refuse a key without the endpoint its provider needs, or an endpoint without a key where one is needed."""
    if registry.needs_api_base(provider) and not api_base:
        raise errors.BadRequest(f"a key for {provider} needs 'api_base', the URL of its server", code="NEEDS_API_BASE")
    if not api_key and not registry.needs_api_base(provider):
        raise errors.BadRequest("the field 'api_key' is required", code="MISSING_FIELD")


def get_key(metadata: MetadataStore, tenant: Tenant, provider: str) -> Record:
    """Return the tenant's record for ``provider``, or raise NotFound."""
    try:
        return metadata.get(COLLECTION, tenant.user_id, provider)
    except errors.NotFound:
        raise errors.NotFound(f"no key saved for {provider}", code="KEY_NOT_FOUND") from None


def list_keys(metadata: MetadataStore, tenant: Tenant) -> list[Record]:
    """Return the tenant's saved keys, ordered by provider."""
    return metadata.list(COLLECTION, tenant.user_id)


def delete_key(metadata: MetadataStore, tenant: Tenant, provider: str) -> None:
    """Remove the tenant's key for ``provider`` (NotFound when none), and the active choice that relied on it."""
    try:
        metadata.delete(COLLECTION, tenant.user_id, provider)
    except errors.NotFound:
        raise errors.NotFound(f"no key saved for {provider}", code="KEY_NOT_FOUND") from None
    active.clear_active(metadata, tenant, provider=provider)


def endpoint_models(metadata: MetadataStore, tenant: Tenant, provider: str) -> tuple[str, ...]:
    """Return the models the endpoint of the tenant's key for ``provider`` listed when it was checked, if any."""
    try:
        return tuple(metadata.get(COLLECTION, tenant.user_id, provider).data.get("models") or ())
    except errors.NotFound:
        return ()


def key_for_use(deps: SecretPorts, tenant: Tenant, provider: str) -> StoredKey | None:
    """Return the tenant's decrypted key for a call, or None; the key's first use ever appends an audit record."""
    try:
        stored = deps.metadata.get(COLLECTION, tenant.user_id, provider.lower())
    except errors.NotFound:
        return None
    record = audit.first_use(deps, COLLECTION, stored, "llm_key.first_use", f"llm_key/{stored.key}",
                             details={"provider": stored.key})
    data = record.data
    api_key = deps.encryptor.decrypt(data["ciphertext"]) if data.get("ciphertext") else None
    return StoredKey(api_key=api_key, api_base=data.get("api_base"))


def key_view(record: Record, active_record: Record | None) -> dict[str, Any]:
    """Return the masked view of a saved key: never the key, never its ciphertext."""
    data = record.data
    is_active = active_record is not None and active_record.data["provider"] == data["provider"]
    return {"provider": data["provider"], "last4": f"…{data['last4']}" if data.get("last4") else None,
            "api_base": data.get("api_base"), "models": data.get("models"),
            "created_at": record.created_at.isoformat(),
            "updated_at": record.updated_at.isoformat(), "is_active": is_active,
            "model": active_record.data.get("model") if is_active else None}


def handle(tenant: Tenant, provider: str) -> str:
    """Return an opaque, non-secret handle of a saved key (what the original frontend keeps as its 'token')."""
    return "key_" + hashlib.sha256(f"{tenant.user_id}_{provider}".encode()).hexdigest()[:24]


def verify_key(llm: LlmClient, provider: str, api_key: str | None, api_base: str | None,
               model: str | None = None, *, tenant: Tenant | None = None) -> str:
    """Make one minimal call with the key (1 output token); return the model used, or raise 400/502."""
    require_credentials(provider, api_key, api_base)
    model_id = model or registry.registry().test_model(provider)
    if model_id is None:
        raise errors.BadRequest(f"{provider} has no known chat model to test the key with: send 'model'",
                                code="MISSING_FIELD")
    credentials = Credentials(api_key=api_key, api_base=api_base, source="request", user_api_base=bool(api_base),
                              breaker_scope=tenant.user_id if tenant else "")
    try:
        llm.complete([{"role": "user", "content": "ping"}], model_id=model_id, credentials=credentials,
                     params={"max_tokens": 1})
    except LlmFailed as failure:
        if failure.code == "LLM_AUTH":
            raise errors.BadRequest("the provider refused this key", code="KEY_REFUSED") from None
        if failure.code == "LLM_BAD_REQUEST":
            raise errors.BadRequest(f"the provider refused the test call to {model_id}: send another 'model'",
                                    code="KEY_CHECK_REFUSED") from None
        raise errors.UpstreamError(f"the provider could not be reached to verify the key ({failure.code})",
                                   code="PROVIDER_UNREACHABLE") from None
    return model_id
