"""The cheapest call that proves a provider key works: ask for the list of models the key may use.

Listing models costs no tokens and needs the key, so a key that lists is a key the provider accepts
(LiteLLM's ``check_valid_key`` makes a paid completion instead). ``PROVIDER_LISTS`` holds one such request
per provider that has one; an OpenAI-compatible endpoint (an ``api_base``: vLLM, Ollama, LM Studio, a LiteLLM
proxy...) is asked ``GET {api_base}/models`` with the key as a bearer token, and what it lists is what it serves.

Every request is bounded, whoever answers: a short timeout for each connect and read, and a deadline for the
whole exchange, checked again as the body arrives, so a server that drips bytes is cut off too (it ends within
twice the timeout at worst: a read that began before the deadline may wait its own timeout), at most
``MAX_LIST_BYTES`` read (uncompressed bytes are asked for, and a compressed answer is refused rather than
inflated), redirects followed only within the same origin (scheme, host, port), and at most
``MAX_LISTED_MODELS`` names kept. A user's endpoint is checked against LLM_ALLOWED_HOSTS
(``vet_host``) and the request is pinned to the addresses checked, as every model call to it is
(``hosts.pinned_resolution``). The key travels only in a header (Gemini's too: ``x-goog-api-key``, never
``?key=``), so no URL, log line or error carries it, and errors never quote what the server answered.

httpx is imported when a list is asked for, not with this module.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from common import errors
from common.hosts import Resolver, pinned_resolution

log = logging.getLogger("convoinsight.llm")

MAX_LIST_BYTES = 2 * 1024 * 1024  # OpenAI's list is ~10 KB, Together's ~300 KB
MAX_LISTED_MODELS = 1000
MAX_MODEL_NAME_CHARS = 200
MAX_REDIRECTS = 3
CONNECT_TIMEOUT_SECONDS = 5.0


@dataclasses.dataclass(frozen=True)
class ListRequest:
    """How to ask one provider (or endpoint) for the models a key may use."""

    base: str  # the API's base URL (LLM_KEY_CHECK_URLS may replace a provider's)
    path: str = "/models"
    key_header: str = "Authorization"  # the key goes there: as "Bearer <key>" in Authorization, else as it is
    headers: tuple[tuple[str, str], ...] = ()
    refusals: frozenset[int] = frozenset({401, 403})  # the statuses that mean "not with this key"

    def url(self) -> str:
        """The request's URL."""
        return self.base.rstrip("/") + self.path


PROVIDER_LISTS: Mapping[str, ListRequest] = {
    "openai": ListRequest("https://api.openai.com/v1"),
    "anthropic": ListRequest("https://api.anthropic.com/v1", key_header="x-api-key",
                             headers=(("anthropic-version", "2023-06-01"),)),
    # A wrong Gemini key is a 400 (INVALID_ARGUMENT, API_KEY_INVALID), not a 401.
    "gemini": ListRequest("https://generativelanguage.googleapis.com/v1beta", key_header="x-goog-api-key",
                          refusals=frozenset({400, 401, 403})),
    "groq": ListRequest("https://api.groq.com/openai/v1"),
    "mistral": ListRequest("https://api.mistral.ai/v1"),
    "deepseek": ListRequest("https://api.deepseek.com"),
    "xai": ListRequest("https://api.x.ai/v1"),
    "together_ai": ListRequest("https://api.together.xyz/v1"),
    "cerebras": ListRequest("https://api.cerebras.ai/v1"),
    # OpenRouter lists its models to anyone; its own key's description is what needs the key.
    "openrouter": ListRequest("https://openrouter.ai/api/v1", path="/key"),
}


@dataclasses.dataclass(frozen=True)
class ServedModel:
    """One model an endpoint lists: its name, and the endpoint's own label of it when it gives one."""

    name: str
    kind: str | None = None  # Together's and LM Studio's "type": "chat", "embedding", "image"...


def provider_list_request(provider: str, base_urls: Mapping[str, str]) -> ListRequest | None:
    """Return the list-models request of ``provider`` (its base replaced by ``base_urls``), or None if it has none.

    A provider missing from ``PROVIDER_LISTS`` but named in ``base_urls`` is asked as an OpenAI-compatible API.
    """
    request = PROVIDER_LISTS.get(provider)
    base = base_urls.get(provider)
    if request is None:
        return ListRequest(base) if base else None
    return dataclasses.replace(request, base=base) if base else request


def parse_base_urls(raw: str) -> dict[str, str]:
    """Read LLM_KEY_CHECK_URLS: ``provider=base URL`` pairs separated by commas."""
    urls = {}
    for pair in filter(None, (part.strip() for part in raw.split(","))):
        provider, _, url = pair.partition("=")
        parts = urllib.parse.urlsplit(url.strip())
        if not provider.strip() or parts.scheme not in ("http", "https") or not parts.hostname:
            raise errors.ConfigurationError(f"LLM_KEY_CHECK_URLS: expected provider=http(s) URL, got {pair!r}")
        urls[provider.strip().lower()] = url.strip()
    return urls


def list_models(request: ListRequest, api_key: str | None, *, who: str, timeout_seconds: float,
                vet_host: Resolver | None = None,
                now: Callable[[], float] = time.monotonic) -> tuple[ServedModel, ...] | None:
    """Ask for the models ``api_key`` may use; return them (None when the answer holds no list), or raise why not.

    ``who`` names the other side in errors ("the endpoint", "the provider (openai)"). With ``vet_host``
    (LLM_ALLOWED_HOSTS' check), the host must pass it and is reached only at the addresses it returned.
    Raises BadRequest KEY_REFUSED when the key is refused, UpstreamError for anything else that went wrong.
    """
    import httpx

    url = request.url()
    host = urllib.parse.urlsplit(url).hostname or ""
    pin = pinned_resolution(host, vet_host(host), vet_others=vet_host) if vet_host else contextlib.nullcontext()
    headers = {**dict(request.headers), "Accept": "application/json", "Accept-Encoding": "identity"}
    if api_key:
        headers[request.key_header] = f"Bearer {api_key}" if request.key_header == "Authorization" else api_key
    deadline = now() + timeout_seconds
    timeout = httpx.Timeout(timeout_seconds, connect=min(timeout_seconds, CONNECT_TIMEOUT_SECONDS))
    try:
        with pin, httpx.Client(timeout=timeout, follow_redirects=False) as client:
            status, body = _exchange(client, url, headers, who, lambda: now() > deadline)
    except httpx.TimeoutException:
        raise _timed_out(who, timeout_seconds) from None
    except (httpx.TransportError, OSError) as exc:
        log.info("key check: %s could not be reached (%s)", who, type(exc).__name__)
        raise errors.UpstreamError(f"{who} could not be reached to check the key (connection failed)",
                                   code="PROVIDER_UNREACHABLE") from None
    if status is None:
        raise _timed_out(who, timeout_seconds)
    log.info("key check: %s answered HTTP %s", who, status)
    return _models_in(_checked_answer(status, body, request, who))


def _exchange(client: Any, url: str, headers: dict[str, str], who: str,
              late: Callable[[], bool]) -> tuple[int | None, bytes]:
    """GET ``url``, following same-origin redirects; return (status, body: read for a 2xx only), or (None, b"")
    when the deadline passed."""
    for _ in range(MAX_REDIRECTS + 1):
        with client.stream("GET", url, headers=headers) as response:
            if response.is_redirect:
                target = urllib.parse.urljoin(url, response.headers.get("Location", ""))
                if _origin(target) != _origin(url):
                    raise errors.UpstreamError(f"{who} redirected the key check to another host; redirects to "
                                               "other hosts are not followed", code="PROVIDER_REDIRECTED")
                url = target
                if late():
                    return None, b""
                continue
            if not 200 <= response.status_code < 300:
                return response.status_code, b""
            body = _bounded_body(response, who, late)
            return (None, b"") if body is None else (response.status_code, body)
    raise errors.UpstreamError(f"{who} redirected the key check more than {MAX_REDIRECTS} times",
                               code="PROVIDER_REDIRECTED")


def _bounded_body(response: Any, who: str, late: Callable[[], bool]) -> bytes | None:
    """Read the body up to MAX_LIST_BYTES (None once the deadline passed)."""
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise errors.UpstreamError(f"{who} answered the key check compressed ({encoding[:20]}), which was not "
                                   "asked for", code="MODEL_LIST_UNREADABLE")
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_LIST_BYTES:
        raise _too_large(who)
    body = bytearray()
    for chunk in response.iter_raw():
        body += chunk
        if len(body) > MAX_LIST_BYTES:
            raise _too_large(who)  # leaving the stream drops the connection: the rest is never read
        if late():
            return None
    return bytes(body)


def _checked_answer(status: int, body: bytes, request: ListRequest, who: str) -> Any:
    if status in request.refusals:
        raise errors.BadRequest(f"{who} refused this key (HTTP {status})", code="KEY_REFUSED")
    if status == 429:
        raise errors.UpstreamError(f"{who} is rate limiting this key, or its quota is used up (HTTP 429): "
                                   "try again later", code="PROVIDER_RATE_LIMITED")
    if status == 404:
        raise errors.UpstreamError(f"{who} has no model list at {request.path} (HTTP 404), so the key cannot "
                                   "be checked there", code="MODEL_LIST_UNAVAILABLE")
    if not 200 <= status < 300:
        raise errors.UpstreamError(f"{who} answered the key check with HTTP {status}", code="PROVIDER_ERROR")
    try:
        return json.loads(body)
    except ValueError:
        raise errors.UpstreamError(f"{who} answered the key check with something that is not JSON",
                                   code="MODEL_LIST_UNREADABLE") from None


def _models_in(payload: Any) -> tuple[ServedModel, ...] | None:
    """The models of a list answer: OpenAI's and Anthropic's ``{"data": [...]}``, Together's bare list, or
    ``{"models": [...]}``; None when it holds none of these."""
    items = payload
    if isinstance(payload, dict):
        items = payload.get("data") if isinstance(payload.get("data"), list) else payload.get("models")
    if not isinstance(items, list):
        return None
    models = []
    for item in items[:MAX_LISTED_MODELS]:
        name, kind = (item, None) if isinstance(item, str) else _name_and_kind(item)
        if isinstance(name, str) and 0 < len(name) <= MAX_MODEL_NAME_CHARS:
            models.append(ServedModel(name, kind if isinstance(kind, str) else None))
    return tuple(models)


def _name_and_kind(item: Any) -> tuple[Any, Any]:
    if not isinstance(item, dict):
        return None, None
    return item.get("id") or item.get("name"), item.get("type")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1  # not a port: no origin anything could share
    return parts.scheme, (parts.hostname or "").lower(), port or {"http": 80, "https": 443}.get(parts.scheme)


def _timed_out(who: str, timeout_seconds: float) -> errors.UpstreamError:
    return errors.UpstreamError(f"{who} did not answer the key check within {timeout_seconds:g} s",
                                code="PROVIDER_TIMEOUT")


def _too_large(who: str) -> errors.UpstreamError:
    return errors.UpstreamError(f"{who} answered the key check with more than {MAX_LIST_BYTES} bytes",
                                code="MODEL_LIST_TOO_LARGE")
