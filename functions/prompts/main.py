"""Function `prompts`: the agents' prompts (admins override them, for everyone) and each tenant's configuration.

Overrides are global, so only the users listed in ADMIN_USERS may change them; the configuration layers
(`config/domain/{domain}`, `config/user`) are per tenant and anyone may set their own. The `config/...` routes
have more path segments than `/{name}`, so they never match it: no prompt is ever called "config".
"""

from __future__ import annotations

import flask

from common import bootstrap, errors, names
from common.auth import Tenant
from common.http import Router, json_body
from common.metadata import MetadataStore
from common.prompts import (
    SYSTEM_DEFAULTS,
    PromptConfig,
    load_configuration,
    resolve_configuration,
    save_domain_config,
    save_user_config,
)
from common.prompts.configuration import CONFIG_FIELDS, load_user_config
from common.prompts.overrides import FILE, OVERRIDE
from common.prompts.templates import TEMPLATE_FIELDS
from common.web import tenant_of

router = Router("prompts")


@router.route("/api/v1/prompts", methods=["GET"])
def list_prompts(request: flask.Request):
    tenant_of(request)
    catalog = bootstrap.context().prompts
    items = []
    for name in catalog.names():
        effective = catalog.effective(name)
        items.append({"name": name, "version": effective.template.version, "source": effective.source,
                      "description": effective.template.description})
    return {"items": items}


@router.route("/api/v1/prompts/<name>", methods=["GET"])
def get_prompt(request: flask.Request, name: str):
    tenant = tenant_of(request)
    domain = _domain_arg(request)
    deps = bootstrap.context()
    effective = deps.prompts.effective(name)
    return {"name": name, "version": effective.template.version, "source": effective.source,
            "file_version": effective.file_version, "template": effective.template.to_dict(),
            "versions": deps.prompts.history(name), "domain": domain,
            "configuration": _effective_config(deps.metadata, tenant, domain)}


@router.route("/api/v1/prompts/<name>", methods=["PUT"], body_fields=TEMPLATE_FIELDS)
def put_prompt(request: flask.Request, name: str):
    tenant = _admin(request)
    template = bootstrap.context().prompts.save(name, json_body(request), author=tenant.user_id)
    return {"name": name, "version": template.version, "source": OVERRIDE, "template": template.to_dict()}


@router.route("/api/v1/prompts/<name>", methods=["DELETE"])
def delete_prompt(request: flask.Request, name: str):
    _admin(request)
    template = bootstrap.context().prompts.revert(name)
    return {"name": name, "reverted": True, "version": template.version, "source": FILE}


@router.route("/api/v1/prompts/config/user", methods=["GET"])
def get_user_config(request: flask.Request):
    tenant = tenant_of(request)
    metadata = bootstrap.context().metadata
    config = load_user_config(metadata, tenant)
    return _config_view("user", config, _effective_config(metadata, tenant, _domain_arg(request)))


@router.route("/api/v1/prompts/config/user", methods=["PUT"], body_fields=CONFIG_FIELDS)
def put_user_config(request: flask.Request):
    tenant = tenant_of(request)
    domain, body = _domain_arg(request), json_body(request)
    metadata = bootstrap.context().metadata
    config = save_user_config(metadata, tenant, body)
    return _config_view("user", config, _effective_config(metadata, tenant, domain))


@router.route("/api/v1/prompts/config/domain/<domain>", methods=["GET"])
def get_domain_config(request: flask.Request, domain: str):
    tenant = tenant_of(request)
    domain = names.domain_name(domain)
    metadata = bootstrap.context().metadata
    config, _ = load_configuration(metadata, tenant, domain)
    return {"domain": domain, **_config_view("domain", config, _effective_config(metadata, tenant, domain))}


@router.route("/api/v1/prompts/config/domain/<domain>", methods=["PUT"], body_fields=CONFIG_FIELDS)
def put_domain_config(request: flask.Request, domain: str):
    tenant = tenant_of(request)
    domain = names.domain_name(domain)
    body = json_body(request)
    metadata = bootstrap.context().metadata
    config = save_domain_config(metadata, tenant, domain, body)
    return {"domain": domain, **_config_view("domain", config, _effective_config(metadata, tenant, domain))}


def _admin(request: flask.Request) -> Tenant:
    """Return the caller when ADMIN_USERS lists them: an override changes every tenant's answers."""
    tenant = tenant_of(request)
    if tenant.user_id not in bootstrap.context().settings.admin_users:
        raise errors.Forbidden("only administrators (ADMIN_USERS) may change prompts", code="NOT_ADMIN")
    return tenant


def _domain_arg(request: flask.Request) -> str | None:
    raw = request.args.get("domain")
    return None if raw is None else names.domain_name(raw)


def _effective_config(metadata: MetadataStore, tenant: Tenant, domain: str | None) -> dict:
    """Return the caller's merged configuration (for ``domain`` when given) with each value's layer."""
    if domain is None:
        domain_config, user_config = None, load_user_config(metadata, tenant)
    else:
        domain_config, user_config = load_configuration(metadata, tenant, domain)
    return resolve_configuration(SYSTEM_DEFAULTS, domain_config, user_config, None).describe()


def _config_view(layer: str, config: PromptConfig, effective: dict) -> dict:
    return {"layer": layer, "config": config.to_dict(), "effective": effective}


def prompts(request: flask.Request) -> flask.Response:
    """Entry point (functions-framework target `prompts`)."""
    return router(request)
