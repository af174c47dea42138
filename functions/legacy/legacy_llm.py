"""The original API's provider-key, active-config and registry routes, in their original shapes.

What the original frontend needs (FRONTEND_CONTRACT.md §5.3): a flag (``valid``, ``updated``, ``deleted``,
``saved``) with ``error`` beside it, whatever the status; ``/validate-key`` must keep the key and answer a
non-empty ``models`` and ``token``; provider names arrive in any case (``GEMINI``). What it no longer gets:
the key's ciphertext (``token`` is an opaque handle), several active providers at once, or an owner-less
record from ``/set-active-config`` (LEGACY_API.md §6 D16). The preferences saved there are used: the model
becomes the default of the tenant's questions.

``/validate-key`` and ``/update-provider-key`` check the key before keeping it (the original never did, so a
wrong key replaced a working one and failed only at the first question): they list its models where its
calls will go (``key_checks``), and keep it only when that worked, else ``valid``/``updated`` is false with
why. With an endpoint in play (LLM_API_BASE), the models offered and accepted are the endpoint's own.
Checking calls the provider, so these two count against the ``query`` rate limit.
"""

from __future__ import annotations

from typing import Any

import flask

from common import audit, bootstrap, errors
from common.auth import Tenant
from common.http import Router, json_body
from common.services.llm_config import active, fields, key_checks, registry, stored_keys
from common.web import tenant_of

KEYS_V1 = {"Deprecation": "true", "Link": '</api/v1/llm/keys>; rel="successor-version"'}
ACTIVE_V1 = {"Deprecation": "true", "Link": '</api/v1/llm/active>; rel="successor-version"'}
REGISTRY_V1 = {"Deprecation": "true", "Link": '</api/v1/llm/providers>; rel="successor-version"'}


def _flagged(flag: str | None):
    """Build an error body in the original's shape: ``{flag: false, "error"}``, or ``{"error"}``."""

    def body(error: errors.AppError, request_id: str) -> dict:
        return {flag: False, "error": error.message} if flag else {"error": error.message}

    return body


def _caller(request: flask.Request, user_id: Any, missing: str, *, spend: str | None = None) -> Tenant:
    """The authenticated caller; the original required ``userId``, and it must be that caller."""
    if not isinstance(user_id, str) or not user_id.strip():
        raise errors.BadRequest(missing, code="MISSING_FIELD")
    return tenant_of(request, legacy_user_id=user_id, spend=spend)


def _required(body: dict[str, Any], names: tuple[str, ...], missing: str) -> None:
    if any(not isinstance(body.get(name), str) or not body[name].strip() for name in names):
        raise errors.BadRequest(missing, code="MISSING_FIELD")


def _store(request: flask.Request, missing: str) -> tuple[Tenant, str, key_checks.CheckedKey]:
    """Check ``{userId, provider, apiKey}``, then the key itself, and store (or overwrite) it only if it works;
    return (caller, provider, the models it may use)."""
    body = json_body(request)
    _required(body, ("provider", "apiKey"), missing)
    tenant = _caller(request, body.get("userId"), missing, spend="query")  # the check calls the provider
    provider = registry.provider_id(body["provider"])
    api_key = fields.plausible_key(fields.text(body, "apiKey", fields.MAX_KEY_CHARS, required=True))
    if not registry.registry().models_of(provider):
        # The original frontend offers only listed models and cannot send an endpoint.
        raise errors.BadRequest(f"{provider} needs an endpoint (api_base): save it with POST /api/v1/llm/keys",
                                code="NEEDS_API_BASE")
    ctx = bootstrap.context()
    encryptor = ctx.encryptor  # a misconfigured instance fails before the provider is called
    resource, details = f"llm_key/{provider}", {"provider": provider}
    with audit.audited(ctx, tenant.user_id, "llm_key.test", resource, details=details):
        checked = key_checks.check_key(ctx.settings, provider, api_key, None)
    with audit.audited(ctx, tenant.user_id, "llm_key.save", resource, details=details):
        stored_keys.save_key(ctx.metadata, encryptor, tenant, provider, api_key, None, mode="upsert",
                             served_models=checked.models if checked.served else None)
    return tenant, provider, checked


def validate_key(request: flask.Request):
    tenant, provider, checked = _store(request, "Missing provider, apiKey, or userId")
    active.activate_provider(bootstrap.context().metadata, tenant, provider)
    return {"valid": True, "provider": provider, "models": list(checked.models),
            "token": stored_keys.handle(tenant, provider)}


def update_provider_key(request: flask.Request):
    _, _, checked = _store(request, "Missing fields")
    return {"updated": True, "models": list(checked.models)}


def delete_provider_key(request: flask.Request):
    body = json_body(request)
    missing = "Missing userId or provider"
    _required(body, ("provider",), missing)
    tenant = _caller(request, body.get("userId"), missing)
    provider, ctx = body["provider"].strip().lower(), bootstrap.context()
    try:
        with audit.audited(ctx, tenant.user_id, "llm_key.delete", f"llm_key/{provider}",
                           details={"provider": provider}):
            stored_keys.delete_key(ctx.metadata, tenant, provider)
    except errors.NotFound:
        raise errors.NotFound("Key not found") from None
    return {"deleted": True}


def get_provider_keys(request: flask.Request):
    tenant = _caller(request, request.args.get("userId"), "Missing userId")
    metadata, known = bootstrap.context().metadata, registry.registry()
    current = active.get_active(metadata, tenant)
    items = [_key_item(tenant, record, current, known) for record in stored_keys.list_keys(metadata, tenant)]
    return {"items": items, "count": len(items), "summary": f"{len(items)} provider keys found"}


def _key_item(tenant: Tenant, record: Any, current: Any, known: registry.Registry) -> dict[str, Any]:
    provider = record.data["provider"]
    is_active = current is not None and current.data["provider"] == provider
    chosen = current.data if is_active else {}
    params = chosen.get("params") or {}
    models = record.data.get("models") or list(known.models_of(provider))  # its endpoint's, when it has one
    return {"id": f"{tenant.user_id}_{provider}", "provider": provider, "models": models,
            "is_active": is_active, "updated_at": record.updated_at.isoformat(),
            "selectedModel": chosen.get("model"), "verbosity": params.get("verbosity"),
            "reasoning": params.get("reasoning_effort"), "seed": params.get("seed")}


def set_active_config(request: flask.Request):
    body = json_body(request)
    missing = "Missing userId or provider"
    _required(body, ("provider",), missing)
    tenant = _caller(request, body.get("userId"), missing)
    provider = registry.provider_id(body["provider"])
    model = fields.text(body, "selectedModel", fields.MAX_MODEL_CHARS, required=False)
    metadata = bootstrap.context().metadata
    model = registry.model_of(provider, model, stored_keys.endpoint_models(metadata, tenant, provider)) \
        if model else None
    verbosity, reasoning = (_folded(body.get(name)) for name in ("verbosity", "reasoning"))
    params = fields.model_params({"verbosity": verbosity, "reasoning_effort": reasoning, "seed": body.get("seed")})
    active.set_active(metadata, tenant, provider, model, params)
    return {"saved": True, "provider": provider, "message": f"Active provider set to {provider}"}


def _folded(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def litellm_models(request: flask.Request):
    known = registry.registry()
    models = known.all_models()
    groups = {provider: list(known.models_of(provider)) for provider in known.providers if known.models_of(provider)}
    return {"count": len(models), "groups": groups, "models": models}


def litellm_providers(request: flask.Request):
    known = registry.registry()
    return {"count": len(known.providers), "providers": list(known.providers), "version": known.version}


def llm_registry(request: flask.Request):
    known = registry.registry()
    models = known.all_models()
    groups = {provider: list(known.models_of(provider)) for provider in known.providers if known.models_of(provider)}
    return {"providers": list(known.providers), "models": models, "groups": groups,
            "counts": {"providers": len(known.providers), "models": len(models)}}


def register(router: Router) -> None:
    """Add the provider-key, active-config and registry routes to the legacy function's router."""
    router.route("/validate-key", methods=["POST"], error_body=_flagged("valid"), headers=KEYS_V1)(validate_key)
    router.route("/update-provider-key", methods=["PUT"], error_body=_flagged("updated"),
                 headers=KEYS_V1)(update_provider_key)
    router.route("/delete-provider-key", methods=["DELETE"], error_body=_flagged(None),
                 headers=KEYS_V1)(delete_provider_key)
    router.route("/get-provider-keys", methods=["GET"], error_body=_flagged(None), headers=KEYS_V1)(get_provider_keys)
    router.route("/set-active-config", methods=["POST"], error_body=_flagged("saved"),
                 headers=ACTIVE_V1)(set_active_config)
    router.route("/litellm/models", methods=["GET"], error_body=_flagged(None), headers=REGISTRY_V1)(litellm_models)
    router.route("/litellm/providers", methods=["GET"], error_body=_flagged(None),
                 headers=REGISTRY_V1)(litellm_providers)
    router.route("/llm/registry", methods=["GET"], error_body=_flagged(None), headers=REGISTRY_V1)(llm_registry)
