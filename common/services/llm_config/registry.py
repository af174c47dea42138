"""Which providers LiteLLM can route and which chat models each has, from LiteLLM's bundled model map.

Provider ids are LiteLLM's own lower-case ids (``gemini``), never the enum names the original listed
(``GEMINI``, which LiteLLM rejects, LEGACY_API.md D12). A provider is listed when the map has at least one chat
model for it, or when it is an OpenAI-compatible server (vLLM, Ollama, LM Studio...) whose models are whatever
its operator serves. Models are full LiteLLM ids (``gemini/gemini-2.5-flash``), sorted, and chat models only:
the map files some other things as ``chat`` (``openai/container``, a code-interpreter session priced per
session; ``ft:`` price templates of fine-tuned models; models served only by the Responses or Realtime API),
and those are left out.

The registry is built once per process from the map, and again only if the map changes (a model registered at
run time, as tests register their scripted provider), which a length and a tuple of names detect cheaply.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.metadata
import re
from collections.abc import Collection, Mapping
from typing import Any

from common import errors
from common.llm import compose_model_id, provider_of
from common.llm.runtime import load_litellm

# OpenAI-compatible servers: any model name is theirs, and a key for them is useless without its api_base.
OPENAI_COMPATIBLE = frozenset({"hosted_vllm", "ollama", "ollama_chat", "lm_studio", "openai_like", "custom_openai",
                               "llamafile", "litellm_proxy", "xinference", "docker_model_runner"})
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
MAX_SHOWN_MODEL_CHARS = 80


@dataclasses.dataclass(frozen=True)
class Registry:
    """Providers (sorted ids), their chat models (sorted full ids) and each model's price per token pair."""

    providers: tuple[str, ...]
    models: Mapping[str, tuple[str, ...]]
    prices: Mapping[str, float]
    version: str
    # Every name in the map (as filed, and as a full id) -> whether it is a chat model: what an endpoint's own
    # model list is read against (key_checks), since an endpoint may serve embeddings or speech models too.
    chat_names: Mapping[str, bool] = dataclasses.field(default_factory=dict)

    def models_of(self, provider: str) -> tuple[str, ...]:
        """Return the provider's chat models (empty for an unknown provider or a bare compatible server)."""
        return self.models.get(provider, ())

    def all_models(self) -> list[str]:
        """Return every chat model of every provider, sorted."""
        return sorted(model for models in self.models.values() for model in models)

    def is_chat_model(self, name: str) -> bool | None:
        """Tell whether the map files ``name`` (bare or a full id) as a chat model; None when it is not in the map."""
        return self.chat_names.get(name)

    def test_model(self, provider: str) -> str | None:
        """Return the provider's cheapest priced chat model (its first when none is priced), or None."""
        models = self.models_of(provider)
        priced = [(self.prices[model], model) for model in models if self.prices.get(model)]
        return min(priced)[1] if priced else (models[0] if models else None)


def registry() -> Registry:
    """Return this process's registry, rebuilt only when LiteLLM's maps have changed."""
    litellm = load_litellm()
    custom = tuple(sorted(item["provider"] for item in litellm.custom_provider_map))
    return _build(len(litellm.model_cost), custom)


@functools.lru_cache(maxsize=1)
def _build(model_count: int, custom_providers: tuple[str, ...]) -> Registry:
    # The arguments are the cache key: the map's size and the custom providers it was built with.
    litellm = load_litellm()
    routable = {getattr(item, "value", item) for item in litellm.provider_list} | set(custom_providers)
    models: dict[str, set[str]] = {}
    prices: dict[str, float] = {}
    chat_names: dict[str, bool] = {}
    for name, entry in litellm.model_cost.items():
        if not isinstance(entry, dict):
            continue
        chat = entry.get("mode") == "chat" and _is_chat_model(name, entry)
        owner = entry.get("litellm_provider")
        for known_as in (name, f"{owner}/{name}" if isinstance(owner, str) else name):
            chat_names[known_as] = chat
        provider = _routing_provider(entry, routable)
        if provider is None or not chat:
            continue
        model_id = name if name.startswith(f"{provider}/") else f"{provider}/{name}"
        chat_names[model_id] = True
        models.setdefault(provider, set()).add(model_id)
        prices[model_id] = float(entry.get("input_cost_per_token") or 0) + float(
            entry.get("output_cost_per_token") or 0)
    providers = set(models) | (OPENAI_COMPATIBLE & routable) | set(custom_providers)
    return Registry(providers=tuple(sorted(providers)),
                    models={provider: tuple(sorted(ids)) for provider, ids in models.items()},
                    prices=prices, version=_litellm_version(), chat_names=chat_names)


def _is_chat_model(name: str, entry: dict) -> bool:
    """Whether a ``chat`` entry of the map is a model a chat completion can be asked of."""
    endpoints = entry.get("supported_endpoints")
    if isinstance(endpoints, list) and not any(str(path).endswith("/chat/completions") for path in endpoints):
        return False  # served by the Responses, Realtime or another API only (computer-use-preview...)
    if name.rpartition("/")[2].startswith("ft:"):
        return False  # the price of a user's fine-tuned model, named after its base: not a model anyone can call
    # A code-interpreter container (openai/container), filed as chat and priced per session, not per token.
    return "code_interpreter_cost_per_session" not in entry


def _routing_provider(entry: Any, routable: set[str]) -> str | None:
    if not isinstance(entry, dict) or entry.get("mode") != "chat":
        return None
    provider = entry.get("litellm_provider")
    if not isinstance(provider, str):
        return None
    if provider in routable:
        return provider
    # The map files some models under a family (vertex_ai-anthropic_models, bedrock_converse); LiteLLM routes
    # them by the family's provider id.
    owners = [known for known in routable if provider.startswith((f"{known}-", f"{known}_"))]
    return max(owners, key=len) if owners else None


def _litellm_version() -> str:
    try:
        return importlib.metadata.version("litellm")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def provider_id(value: Any) -> str:
    """Return a provider name as LiteLLM's id (case-insensitive), or raise BadRequest when LiteLLM has none."""
    if not isinstance(value, str) or not value.strip():
        raise errors.BadRequest("'provider' must be a non-empty string", code="MISSING_FIELD")
    provider = value.strip().lower()
    if provider not in registry().providers:
        # Echoed only when it is a plain name: the original frontend may render errors as HTML.
        shown = value.strip() if _PLAIN_NAME.fullmatch(value.strip()) else "(not a provider name)"
        raise errors.BadRequest(f"Provider not supported: {shown}", code="UNKNOWN_PROVIDER")
    return provider


def needs_api_base(provider: str) -> bool:
    """Tell whether a key for ``provider`` only works with its own endpoint (an OpenAI-compatible server)."""
    return provider in OPENAI_COMPATIBLE


def model_of(provider: str, model: Any, served: Collection[str] = ()) -> str:
    """Return the full id of ``model`` for ``provider``, refusing one that is not that provider's chat model.

    ``served``: the chat models (full ids) the endpoint of the tenant's key listed when the key was checked.
    When there are any, they are the provider's models for this tenant, whatever LiteLLM's map says: its calls
    go to that endpoint.
    """
    if not isinstance(model, str) or not model.strip():
        raise errors.BadRequest("'model' must be a non-empty string", code="MISSING_FIELD")
    if served:
        for candidate in (model.strip(), f"{provider}/{model.strip()}"):
            if candidate in served:  # as listed, or its served name: which may hold a slash itself (org/model)
                return candidate
        raise errors.BadRequest(f"model {model.strip()[:MAX_SHOWN_MODEL_CHARS]!r} is not among the chat models "
                                f"the endpoint of your {provider} key lists", code="INVALID_MODEL")
    model_id = compose_model_id(provider, model, None)
    if provider_of(model_id) != provider:
        raise errors.BadRequest(f"model {model_id!r} does not belong to provider {provider!r}", code="INVALID_MODEL")
    if not needs_api_base(provider) and model_id not in registry().models_of(provider):
        raise errors.BadRequest(f"model {model_id!r} is not a chat model of {provider!r} in LiteLLM's model map",
                                code="INVALID_MODEL")
    return model_id
