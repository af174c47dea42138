"""A question's request, validated at the edge, and the model and credentials its stages use.

The request's API key, when it sends one, is kept encrypted on the job only while the question runs (the
stages run later, in another function), and never returned. Keys then come, per provider, from the
request, the tenant's saved keys, or the server's defaults, in that order.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
from typing import TYPE_CHECKING, Any

from common import errors, names
from common.auth import Tenant
from common.config import Settings
from common.names import Domain
from common.ports import QuestionPorts
from common.services.pipeline.job import JobRequest, QueryJob

if TYPE_CHECKING:
    from common.llm import Credentials

MAX_PROMPT_CHARS = 4000
MAX_DATASETS = 50
VISUAL_HINTS = ("bar", "line", "table", "auto")
# The fields of a v1 question body (``POST /api/v1/queries``); any other is a 400 naming it.
QUESTION_FIELDS = ("domain", "prompt", "session_id", "datasets", "provider", "model", "include_insight",
                   "visual_hint", "apiKey", "api_base")
_SESSION_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


@dataclasses.dataclass(frozen=True)
class QuestionRequest:
    domain: Domain
    prompt: str
    session_id: str
    datasets: tuple[str, ...]  # empty: every dataset of the domain
    pg_tokens: tuple[str, ...]  # Postgres tables (pg:<connection>:<table>, the original's pg:* forms)
    model_id: str
    include_insight: bool
    visual_hint: str | None
    api_key: str | None
    api_base: str | None
    model_params: dict[str, Any] = dataclasses.field(default_factory=dict)  # the active choice's, for its model
    # The caller named a session that must exist (v1); the original API's clients make new sessions' ids themselves.
    continues_session: bool = False

    def stored(self, *, answer_key: str = "") -> JobRequest:
        """What the job keeps of the request (no key)."""
        return JobRequest(datasets=list(self.datasets), pg_tokens=list(self.pg_tokens), model_id=self.model_id,
                          include_insight=self.include_insight, visual_hint=self.visual_hint, api_base=self.api_base,
                          model_params=self.model_params, answer_key=answer_key)


def parse_question(body: dict[str, Any], settings: Settings, *, legacy: bool = False,
                   needs_prompt: bool = True, default_model: str | None = None,
                   default_params: dict[str, Any] | None = None) -> QuestionRequest:
    """Validate a question's body (v1 field names, or the original API's with ``legacy``).

    A question that names no model uses ``default_model`` (the tenant's active choice), else ``LLM_DEFAULT_MODEL``;
    a question that uses the active model (named or not) gets its ``default_params`` (temperature...).
    """
    from common.llm import compose_model_id

    domain = names.domain_name(_required_text(body, "domain", 128))
    prompt = _required_text(body, "prompt", MAX_PROMPT_CHARS).strip() if needs_prompt else ""
    session_id = body.get("session_id") or new_session_id()
    if not isinstance(session_id, str) or not _SESSION_ID.match(session_id):
        raise errors.BadRequest("'session_id' must be 1-128 letters, digits, '_', '-', '.' or ':'")
    datasets, pg_tokens = _datasets(body.get("dataset" if legacy else "datasets"))
    pg_tokens += _legacy_pg_object(body.get("pg")) if legacy else ()
    model_id = compose_model_id(_optional_text(body, "provider", 64), _optional_text(body, "model", 256),
                                default_model or settings.llm_default_model or None)
    include_insight = _flag(body, "includeInsight" if legacy else "include_insight", default=True)
    visual_hint = _optional_text(body, "visual_hint", 16)
    if visual_hint is not None and visual_hint not in VISUAL_HINTS:
        raise errors.BadRequest(f"'visual_hint' must be one of {', '.join(VISUAL_HINTS)}")
    return QuestionRequest(domain=domain, prompt=prompt, session_id=session_id, datasets=datasets, pg_tokens=pg_tokens,
                           model_id=model_id, include_insight=include_insight, visual_hint=visual_hint,
                           api_key=_optional_text(body, "apiKey", 1024),
                           api_base=_optional_text(body, "api_base", 2048),
                           model_params=dict(default_params or {}) if model_id == default_model else {},
                           continues_session=not legacy and body.get("session_id") is not None)


def new_session_id() -> str:
    return "s_" + secrets.token_hex(8)


def _required_text(body: dict[str, Any], field: str, limit: int) -> str:
    value = body.get(field)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise errors.BadRequest(f"the field '{field}' is required", code="MISSING_FIELD")
    if not isinstance(value, str):
        raise errors.BadRequest(f"'{field}' must be a string")
    if len(value) > limit:
        raise errors.BadRequest(f"'{field}' may be at most {limit} characters")
    return value


def _optional_text(body: dict[str, Any], field: str, limit: int) -> str | None:
    value = body.get(field)
    if value is None or value == "":
        return None
    return _required_text(body, field, limit).strip()


def _datasets(value: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Split the requested datasets into file names and ``pg:`` tokens (checked when they are loaded)."""
    if value is None or value == "" or value == []:
        return (), ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise errors.BadRequest("'datasets' must be a list of dataset names")
    if len(items) > MAX_DATASETS:
        raise errors.BadRequest(f"at most {MAX_DATASETS} datasets per question")
    tokens = tuple(dict.fromkeys(item for item in items if item.startswith("pg:")))
    files = tuple(dict.fromkeys(names.dataset_name(item) for item in items if not item.startswith("pg:")))
    return files, tokens


def _legacy_pg_object(value: Any) -> tuple[str, ...]:
    """The original /query's ``pg`` object ({tables: [...], queries: [{alias, sql}]}) as pg: tokens."""
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise errors.BadRequest("'pg' must be an object with 'tables' and/or 'queries'")
    tables, queries = value.get("tables") or [], value.get("queries") or []
    if not isinstance(tables, list) or not all(isinstance(t, str) for t in tables) or not isinstance(queries, list):
        raise errors.BadRequest("'pg.tables' must be a list of table names and 'pg.queries' a list")
    tokens = [f"pg:table:{table}" for table in tables]
    for item in queries:
        if not isinstance(item, dict) or not isinstance(item.get("alias"), str) or not isinstance(item.get("sql"), str):
            raise errors.BadRequest("each of 'pg.queries' needs a string 'alias' and 'sql'")
        tokens.append(f"pg:query:{item['alias']}|{item['sql']}")
    return tuple(tokens)


def _flag(body: dict[str, Any], field: str, *, default: bool) -> bool:
    value = body.get(field, default)
    # The original counted the string "false" as true (LEGACY_API.md §6 D16); read it as what it says.
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise errors.BadRequest(f"'{field}' must be true or false")
    return value


def server_default_keys(settings: Settings) -> dict[str, str]:
    """The server's own keys per provider, from ``LLM_DEFAULT_API_KEYS`` (``provider=key,...``)."""
    keys = {}
    for pair in filter(None, (part.strip() for part in settings.llm_default_api_keys.split(","))):
        provider, _, key = pair.partition("=")
        if provider and key:
            keys[provider.strip().lower()] = key.strip()
    return keys


def job_credentials(deps: QuestionPorts, tenant: Tenant, model_id: str, job: QueryJob) -> Credentials:
    """Resolve the credentials of one model for a running job (its sealed request key, if any)."""
    sealed = (job.secrets or {}).get("api_key")
    return credentials_for(deps, tenant, model_id, request_key=deps.encryptor.decrypt(sealed) if sealed else None,
                           request_api_base=job.request.api_base)


def credentials_for(deps: QuestionPorts, tenant: Tenant, model_id: str, *, request_key: str | None,
                    request_api_base: str | None) -> Credentials:
    """Resolve one model's credentials: the request's key, then the tenant's saved key, then the server's."""
    from common.llm import resolve_credentials
    from common.services.llm_config.stored_keys import key_for_use

    defaults = server_default_keys(deps.settings)
    check_api_base_host(deps.settings, request_api_base)

    def saved_key(provider: str) -> Any:
        # The encryptor (ENCRYPTION_KEYS) is needed only once a saved key is found.
        key = key_for_use(deps, tenant, provider)
        if key is not None:
            check_api_base_host(deps.settings, key.api_base)
        return key

    resolved = resolve_credentials(model_id, request_key=request_key, request_api_base=request_api_base,
                                   stored_key_lookup=saved_key,
                                   server_default_key=lambda provider: defaults.get(provider),
                                   default_api_base=deps.settings.llm_api_base or None)
    return dataclasses.replace(resolved, breaker_scope=tenant.user_id)


def check_saved_api_base(settings: Settings, api_base: str | None) -> None:
    """Refuse, when a key is saved (as a Postgres host is), an endpoint LLM_ALLOWED_HOSTS does not allow; with
    ``*`` nothing is refused, and the name need not resolve from here yet."""
    from common.hosts import HostPolicy

    if api_base and not HostPolicy.from_settings(settings, "LLM_ALLOWED_HOSTS").any_host:
        check_api_base_host(settings, api_base)


def check_api_base_host(settings: Settings, api_base: str | None) -> None:
    """Refuse an ``api_base`` (a request's, or a saved key's) whose host LLM_ALLOWED_HOSTS does not allow."""
    import urllib.parse

    from common.hosts import HostPolicy

    host = urllib.parse.urlsplit(api_base).hostname if api_base else None
    if host:
        HostPolicy.from_settings(settings, "LLM_ALLOWED_HOSTS").vetted_addresses(host)
