"""Function `prompts`: the agents' prompts (admins override them, for everyone), each tenant's configuration,
and each tenant's audit trail (``/api/v1/audit``: who changed what, here and in every other function).

Overrides are global, so only the users listed in ADMIN_USERS may change them; the configuration layers
(`config/domain/{domain}`, `config/user`) are per tenant and anyone may set their own. The `config/...` routes
have more path segments than `/{name}`, so they never match it: no prompt is ever called "config".

The audit trail is read here because this function already answers for the account's administration: it
holds the ADMIN_USERS check (an administrator may read any tenant's trail) and the tenant's own settings.
"""

from __future__ import annotations

import flask

from common import audit, bootstrap, errors, names
from common.audit import listing as audit_query
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
    tenant, body, ctx = _admin(request), json_body(request), bootstrap.context()
    # Overrides are global: recorded in the acting administrator's own trail.
    with audit.audited(ctx, tenant.user_id, "prompt.override", f"prompt/{name}", details={"prompt": name}) as done:
        template = ctx.prompts.save(name, body, author=tenant.user_id)
        done.details["version"] = template.version
    return {"name": name, "version": template.version, "source": OVERRIDE, "template": template.to_dict()}


@router.route("/api/v1/prompts/<name>", methods=["DELETE"])
def delete_prompt(request: flask.Request, name: str):
    tenant, ctx = _admin(request), bootstrap.context()
    with audit.audited(ctx, tenant.user_id, "prompt.revert", f"prompt/{name}", details={"prompt": name}) as done:
        template = ctx.prompts.revert(name)
        done.details["version"] = template.version
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
    ctx = bootstrap.context()
    metadata = ctx.metadata
    with audit.audited(ctx, tenant.user_id, "config.set", "config/user",
                       details={"layer": "user", "fields": sorted(body)}):
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
    ctx = bootstrap.context()
    metadata = ctx.metadata
    with audit.audited(ctx, tenant.user_id, "config.set", f"config/domain/{domain}",
                       details={"layer": "domain", "domain": domain, "fields": sorted(body)}):
        config = save_domain_config(metadata, tenant, domain, body)
    return {"domain": domain, **_config_view("domain", config, _effective_config(metadata, tenant, domain))}


@router.route("/api/v1/audit", methods=["GET"])
def list_audit(request: flask.Request):
    tenant, ctx = tenant_of(request), bootstrap.context()
    query = audit_query.parse(request.args)
    target = query.tenant or tenant.user_id
    if target != tenant.user_id:
        if not _is_admin(tenant):
            raise errors.Forbidden("only administrators (ADMIN_USERS) may read another tenant's audit trail",
                                   code="NOT_ADMIN")
        # An administrator reading a tenant's trail is itself on that tenant's record, before anything is read.
        audit.record(ctx, target, "audit.read", f"audit/{target}", actor=tenant.user_id)
    page = audit_query.list_events(ctx.metadata, target, action=query.action, since=query.since,
                                   until=query.until, limit=query.limit, cursor=query.cursor)
    return {"tenant": target, "items": [audit_query.view(event) for event in page.events],
            "count": len(page.events), "next_cursor": page.next_cursor}


def _admin(request: flask.Request) -> Tenant:
    """Return the caller when ADMIN_USERS lists them: an override changes every tenant's answers."""
    tenant = tenant_of(request)
    if not _is_admin(tenant):
        raise errors.Forbidden("only administrators (ADMIN_USERS) may change prompts", code="NOT_ADMIN")
    return tenant


def _is_admin(tenant: Tenant) -> bool:
    return tenant.user_id in bootstrap.context().settings.admin_users


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
