"""Function `llm`: the provider and model registry, a tenant's saved provider keys, its active model, and
speech-to-text for voice questions."""

from __future__ import annotations

from typing import Any

import flask

from common import audit, bootstrap, errors, scratch
from common.auth import Tenant
from common.http import Router, json_body
from common.services.llm_config import active, fields, key_checks, registry, stored_keys
from common.services.pipeline.request import check_saved_api_base
from common.web import receive_clip, tenant_of

router = Router("llm")

VERIFY_TIMEOUT_SECONDS = 30.0
LIST_CHECK = "list-models"  # ``verified_with`` of a key verified by listing its models
KEY_FIELDS = ("provider", "api_key", "model", "api_base")


@router.route("/api/v1/llm/providers", methods=["GET"])
def list_providers(request: flask.Request):
    tenant_of(request)
    known = registry.registry()
    items = [{"provider": provider, "models": len(known.models_of(provider)),
              "needs_api_base": registry.needs_api_base(provider)} for provider in known.providers]
    return {"items": items, "count": len(items), "litellm_version": known.version}


@router.route("/api/v1/llm/models", methods=["GET"])
def list_models(request: flask.Request):
    tenant = tenant_of(request)
    known = registry.registry()
    if request.args.get("provider") is None:
        models = known.all_models()
        return {"provider": None, "items": models, "count": len(models)}
    provider = registry.provider_id(request.args["provider"])
    # The models the endpoint of the caller's key listed when it was checked, else LiteLLM's map's.
    models = list(stored_keys.endpoint_models(bootstrap.context().metadata, tenant, provider)
                  or known.models_of(provider))
    return {"provider": provider, "items": models, "count": len(models)}


@router.route("/api/v1/llm/keys", methods=["GET"])
def list_keys(request: flask.Request):
    tenant, metadata = tenant_of(request), bootstrap.context().metadata
    current = active.get_active(metadata, tenant)
    items = [stored_keys.key_view(record, current) for record in stored_keys.list_keys(metadata, tenant)]
    return {"items": items, "count": len(items)}


@router.route("/api/v1/llm/keys", methods=["POST"], body_fields=KEY_FIELDS)
def add_key(request: flask.Request):
    tenant, body = tenant_of(request, spend=_verify_spend(request)), json_body(request)
    return _save(tenant, request, registry.provider_id(body.get("provider")), body, mode="create"), 201


@router.route("/api/v1/llm/keys/<provider>", methods=["GET"])
def get_key(request: flask.Request, provider: str):
    tenant, metadata = tenant_of(request), bootstrap.context().metadata
    record = stored_keys.get_key(metadata, tenant, provider.lower())
    return stored_keys.key_view(record, active.get_active(metadata, tenant))


@router.route("/api/v1/llm/keys/<provider>", methods=["PUT"], body_fields=KEY_FIELDS)
def replace_key(request: flask.Request, provider: str):
    tenant, body = tenant_of(request, spend=_verify_spend(request)), json_body(request)
    provider = registry.provider_id(provider)
    if body.get("provider") is not None and registry.provider_id(body["provider"]) != provider:
        raise errors.BadRequest("'provider' in the body differs from the one in the path")
    return _save(tenant, request, provider, body, mode="replace")


@router.route("/api/v1/llm/keys/<provider>", methods=["DELETE"])
def delete_key(request: flask.Request, provider: str):
    tenant, ctx = tenant_of(request), bootstrap.context()
    with audit.audited(ctx, tenant.user_id, "llm_key.delete", f"llm_key/{provider.lower()}",
                       details={"provider": provider.lower()}):
        stored_keys.delete_key(ctx.metadata, tenant, provider.lower())
    return {"deleted": True, "provider": provider.lower()}


@router.route("/api/v1/llm/active", methods=["GET"])
def get_active(request: flask.Request):
    record = active.get_active(bootstrap.context().metadata, tenant_of(request))
    if record is None:
        raise errors.NotFound("no active model: questions use the server's default", code="NO_ACTIVE_MODEL")
    return active.active_view(record)


@router.route("/api/v1/llm/active", methods=["PUT"], body_fields=("provider", "model", "params"))
def set_active(request: flask.Request):
    body = json_body(request)
    tenant = tenant_of(request)
    provider = registry.provider_id(body.get("provider"))
    metadata = bootstrap.context().metadata
    model = registry.model_of(provider, fields.text(body, "model", fields.MAX_MODEL_CHARS, required=True),
                              stored_keys.endpoint_models(metadata, tenant, provider))
    params = fields.model_params(body.get("params"))
    return active.active_view(active.set_active(metadata, tenant, provider, model, params))


@router.route("/api/v1/llm/active", methods=["DELETE"])
def clear_active(request: flask.Request):
    return {"deleted": active.clear_active(bootstrap.context().metadata, tenant_of(request))}


@router.route("/api/v1/llm/transcriptions", methods=["POST"])
def transcribe(request: flask.Request):
    from common.services import speech


    tenant, deps = tenant_of(request, spend="query"), bootstrap.context()
    with scratch.directory("speech-") as workdir:
        fields, clip = receive_clip(request, workdir, deps.settings.stt_max_bytes)
        transcript = speech.transcribe(deps, tenant, speech.parse_request(clip, fields))
    return {"text": transcript.pop("transcript"), **transcript}


def _save(tenant: Tenant, request: flask.Request, provider: str, body: dict[str, Any], *,
          mode: stored_keys.SaveMode) -> dict:
    """Check the key's fields, verify it when asked, then store it; return its masked view.

    Verifying lists the key's models where its calls will go (no tokens: ``key_checks``), or, when a ``model``
    is named or no list can show the key works, makes a one-token call to that model (``verify_key``).
    """
    ctx = bootstrap.context()
    encryptor = ctx.encryptor  # a misconfigured instance fails before any paid call
    api_key = fields.text(body, "api_key", fields.MAX_KEY_CHARS, required=False)
    api_key = fields.plausible_key(api_key) if api_key else None
    api_base = fields.api_base(body.get("api_base"))
    check_saved_api_base(ctx.settings, api_base)
    model = fields.text(body, "model", fields.MAX_MODEL_CHARS, required=False)
    model = registry.model_of(provider, model, stored_keys.endpoint_models(ctx.metadata, tenant, provider)) \
        if model else None
    view: dict[str, Any] = {}
    served = None
    resource = f"llm_key/{provider}"
    if _flag(request, "verify"):
        with audit.audited(ctx, tenant.user_id, "llm_key.test", resource, details={"provider": provider}) as test:
            if model is None and key_checks.checkable(ctx.settings, provider, api_base):
                stored_keys.require_credentials(provider, api_key, api_base)  # no call for a key that cannot be saved
                checked = key_checks.check_key(ctx.settings, provider, api_key, api_base)
                view["verified_with"], served = LIST_CHECK, checked.models if checked.served else None
            else:
                # The endpoint is the caller's: held to LLM_ALLOWED_HOSTS like every call to a user's endpoint.
                client = ctx.llm.one_shot(timeout_seconds=VERIFY_TIMEOUT_SECONDS)
                view["verified_with"] = stored_keys.verify_key(client, provider, api_key, api_base, model,
                                                                 tenant=tenant)
            test.details["verified_with"] = view["verified_with"]
    with audit.audited(ctx, tenant.user_id, "llm_key.save", resource, details={"provider": provider}) as saved:
        saved.status = 201 if mode == "create" else 200
        record = stored_keys.save_key(ctx.metadata, encryptor, tenant, provider, api_key, api_base, mode=mode,
                                      served_models=served)
    return {**stored_keys.key_view(record, active.get_active(ctx.metadata, tenant)), **view}


def _verify_spend(request: flask.Request) -> str | None:
    """The rate limit a key's save counts against: verifying it calls the provider, as a question does."""
    return "query" if _flag(request, "verify") else None


def _flag(request: flask.Request, name: str) -> bool:
    value = request.args.get(name, "false").lower()
    if value not in {"true", "false", "1", "0"}:
        raise errors.BadRequest(f"query parameter {name!r} must be true or false")
    return value in {"true", "1"}


def llm(request: flask.Request) -> flask.Response:
    """Entry point (functions-framework target `llm`)."""
    return router(request)
