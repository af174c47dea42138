"""Four suggested questions for a domain, from its profiles: one synchronous call, no job."""

from __future__ import annotations

from typing import Any

from common.auth import Tenant
from common.ports import QuestionPorts
from common.services.pipeline import domain_data
from common.services.pipeline.agent_call import call_agent
from common.services.pipeline.request import QuestionRequest, credentials_for


def suggest_questions(deps: QuestionPorts, tenant: Tenant, request: QuestionRequest) -> dict[str, Any]:
    """Ask the suggester for four questions the domain's data can answer."""
    from common.prompts import SYSTEM_DEFAULTS, load_configuration, resolve_configuration

    domain_data.check_domain(deps, tenant, request.domain, request.datasets)
    data = domain_data.load_domain(deps, tenant, request.domain, request.datasets)
    config = resolve_configuration(SYSTEM_DEFAULTS, *load_configuration(deps.metadata, tenant,
                                                                         request.domain), None)
    credentials = credentials_for(deps, tenant, request.model_id, request_key=request.api_key,
                                  request_api_base=request.api_base)
    reply = call_agent(deps, tenant, request.stored(), "suggest", {
        "domain": request.domain, "answer_settings": config.answer_settings(),
        "dataset_profiles": domain_data.tables_text(data, deps.settings.prompt_token_budget),
        "attachments": domain_data.attachments_text(data)}, credentials=credentials, cancelled=lambda: False)
    suggestions = [text.strip() for text in reply.value["suggestions"] if isinstance(text, str) and text.strip()]
    return {"suggestions": suggestions[:4], "usage": reply.calls}
