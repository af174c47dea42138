"""Checking a provider key before it is saved, with the cheapest call that needs it: a list of models.

The check goes where the key's calls will go (``common.llm.keys.resolve_credentials``). When an endpoint is in
play (the ``api_base`` sent with the key, else the server's LLM_API_BASE), the endpoint is asked for its models,
and the chat models it lists are the ones the key may use: they are saved with the key, offered to the user
and accepted as its active model. Otherwise the provider's own list-models request is made
(``model_lists.PROVIDER_LISTS``; LLM_KEY_CHECK_URLS may replace its base URL), and the key may use the
provider's chat models in LiteLLM's map. A provider with neither cannot be checked without a paid call: the
check says so instead of calling the key valid (v1's ``?verify=true`` may still make that call, a one-token
completion: ``stored_keys.verify_key``).

A user's endpoint is held to LLM_ALLOWED_HOSTS at the call, as every model call to it is; LLM_API_BASE and the
providers' URLs are the operator's.
"""

from __future__ import annotations

import dataclasses
import re

from common import errors
from common.config import Settings
from common.hosts import HostPolicy
from common.llm import model_lists
from common.llm.models import served_model_id
from common.services.llm_config import registry

KEY_CHECK_TIMEOUT_SECONDS = 10.0  # at most LLM_TIMEOUT_SECONDS
# An endpoint's own label of a model that is not a chat model (Together's and LM Studio's "type").
_NOT_CHAT_KINDS = frozenset({"embedding", "embeddings", "image", "audio", "moderation", "rerank", "transcribe",
                             "tts", "speech", "video"})
# Words in the name of a model LiteLLM's map does not know that mark it as something other than a chat model.
_NOT_CHAT_NAME = re.compile(r"embed|whisper|dall-e|moderation|rerank|transcri|realtime|text-to-speech"
                            r"|(?<![a-z])tts(?![a-z])", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class CheckedKey:
    """A key the provider (or endpoint) accepted, and the chat models it may use (full LiteLLM ids, sorted)."""

    models: tuple[str, ...]
    served: bool  # the endpoint's own list, to keep with the key (else LiteLLM's map, the same for everyone)


def checkable(settings: Settings, provider: str, api_base: str | None) -> bool:
    """Tell whether a key for ``provider`` (with ``api_base``) can be checked without a paid call."""
    if api_base or settings.llm_api_base:
        return True
    return model_lists.provider_list_request(provider, model_lists.parse_base_urls(settings.llm_key_check_urls)) \
        is not None


def check_key(settings: Settings, provider: str, api_key: str | None, api_base: str | None) -> CheckedKey:
    """List the models ``api_key`` may use where its calls will go; raise why when it cannot be shown to work."""
    timeout = min(KEY_CHECK_TIMEOUT_SECONDS, settings.llm_timeout_seconds)
    endpoint = api_base or settings.llm_api_base or None
    if endpoint:
        vet = HostPolicy.from_settings(settings, "LLM_ALLOWED_HOSTS").vetted_addresses if api_base else None
        served = model_lists.list_models(model_lists.ListRequest(endpoint), api_key, who="the endpoint",
                                         timeout_seconds=timeout, vet_host=vet)
        if served is None:
            raise errors.UpstreamError("the endpoint's answer to GET /models is not a list of models",
                                       code="MODEL_LIST_UNREADABLE")
        models = chat_models(provider, served)
        if not models:
            raise errors.UpstreamError("the endpoint accepted the key but lists no chat model", code="NO_CHAT_MODELS")
        return CheckedKey(models, served=True)
    request = model_lists.provider_list_request(provider, model_lists.parse_base_urls(settings.llm_key_check_urls))
    if request is None:
        raise errors.BadRequest(f"a key for {provider} cannot be checked without a paid call, so it was not "
                                "saved: save it with POST /api/v1/llm/keys (?verify=true checks it with a "
                                "one-token call)", code="KEY_NOT_CHECKABLE")
    model_lists.list_models(request, api_key, who=f"the provider ({provider})", timeout_seconds=timeout)
    return CheckedKey(registry.registry().models_of(provider), served=False)


def chat_models(provider: str, served: tuple[model_lists.ServedModel, ...]) -> tuple[str, ...]:
    """Return the full ids of the chat models among those an endpoint lists.

    A model LiteLLM's map knows (by its name, or as ``provider/name``) is what the map says; another is a chat
    model unless the endpoint labels it otherwise or its name says it embeds, transcribes or speaks.
    """
    known = registry.registry()
    models = set()
    for model in served:
        if model.kind is not None and model.kind.lower() in _NOT_CHAT_KINDS:
            continue
        chat = known.is_chat_model(model.name)
        if chat is None:
            chat = known.is_chat_model(f"{provider}/{model.name}")
        if chat is None:
            chat = not _NOT_CHAT_NAME.search(model.name)
        model_id = served_model_id(provider, model.name) if chat else None
        if model_id is not None:
            models.add(model_id)
    return tuple(sorted(models))
