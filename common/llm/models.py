"""Model ids: what the client sent (provider + model, or a full id) becomes one LiteLLM id.

The original composed ids by searching the server's model registry for any id ending in ``/model``, so a
name shared by two providers could silently send a user's key to the wrong one (LEGACY_API.md §6 D16).
Here the id is built only from what was sent: a full id (``gemini/gemini-2.5-flash``) as is, else
``provider/model``. The provider (the first segment) is lower-cased because the original frontend sends enum names
(``GEMINI``), which LiteLLM rejects (D12). No LiteLLM import: the id's provider is its first segment.
"""

from __future__ import annotations

import re

from common.errors import BadRequest

MAX_MODEL_ID_LENGTH = 256
_PROVIDER = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


def compose_model_id(provider: str | None, model: str | None, default: str | None) -> str:
    """Return the LiteLLM model id for a request's provider and model, or the server's default."""
    provider = (provider or "").strip().lower() or None
    model = (model or "").strip() or None
    if model and "/" in model:
        head, _, rest = model.partition("/")
        return _checked(f"{head.lower()}/{rest}")
    if model and provider:
        return _checked(f"{_checked_provider(provider)}/{model}")
    if model:
        raise BadRequest(f"model {model!r} needs a provider: send provider, or a full id such as openai/{model}",
                         code="INVALID_MODEL")
    if not default:
        what = f"provider {provider!r} was sent without a model" if provider else "no model was sent"
        raise BadRequest(f"{what}, and the server has no default model", code="INVALID_MODEL")
    if provider and provider_of(default) != _checked_provider(provider):
        # Never answer with another provider's model: the caller's key for `provider` would go elsewhere.
        raise BadRequest(f"provider {provider!r} was sent without a model, and the server's default model "
                         f"belongs to {provider_of(default)!r}: send the model too", code="INVALID_MODEL")
    return _checked(default)


def served_model_id(provider: str, served_name: str) -> str | None:
    """Return the LiteLLM id of a model an endpoint lists (``provider/served_name``), or None if unusable.

    The name is the endpoint's own and is kept whole, slashes included (``meta-llama/Llama-3.1-8B``):
    LiteLLM sends everything after the provider segment to the endpoint as the model.
    """
    if not served_name.isprintable():
        return None
    try:
        return _checked(f"{_checked_provider(provider)}/{served_name}")
    except BadRequest:
        return None


def provider_of(model_id: str) -> str:
    """Return the provider segment of a full LiteLLM id (``gemini/gemini-2.5-flash`` -> ``gemini``)."""
    provider, slash, _ = model_id.partition("/")
    if not slash:
        raise BadRequest(f"{model_id!r} is not a full model id (provider/model)", code="INVALID_MODEL")
    return _checked_provider(provider.lower())


def _checked_provider(provider: str) -> str:
    if not _PROVIDER.fullmatch(provider):
        raise BadRequest(f"provider {provider!r} is not a provider name", code="INVALID_MODEL")
    return provider


def _checked(model_id: str) -> str:
    if len(model_id) > MAX_MODEL_ID_LENGTH or any(ch.isspace() or ord(ch) < 32 for ch in model_id):
        raise BadRequest("the model id is too long or contains whitespace", code="INVALID_MODEL")
    provider, _, name = model_id.partition("/")
    if not name:
        raise BadRequest(f"{model_id!r} names no model after the provider", code="INVALID_MODEL")
    _checked_provider(provider.lower())
    return model_id
