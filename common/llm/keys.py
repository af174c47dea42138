"""Which API key and endpoint one LLM call uses: the request's, the tenant's saved one, or the server's.

Precedence, per provider: the request's ``apiKey`` > the tenant's stored key for that provider > the
server's default key (Secret Manager in the cloud, the environment locally). Keys are returned per call
and never written to a process-global place, so two tenants' concurrent questions cannot swap keys
(LEGACY_API.md §6 D4).

The endpoint (``api_base``, for any OpenAI-compatible server: vLLM, Ollama, LM Studio, a gateway) follows the
key it goes with: a stored key uses its own saved endpoint, else the server's ``LLM_API_BASE``. An endpoint
named by the request is paired only with the request's own key, or none: a saved or server key is never
sent to a URL that a request chose, or one request could collect the server's key.
"""

from __future__ import annotations

import dataclasses
import re
import urllib.parse
from collections.abc import Callable
from typing import Literal

from common.errors import BadRequest, ConfigurationError
from common.llm.models import provider_of

KeySource = Literal["request", "tenant", "server", "none"]

# A Fernet token is base64url of 0x80 (version) + 8-byte timestamp + IV + ciphertext + HMAC: at least 73
# bytes, so at least 98 characters (plus padding) starting "gAAAAA". The original sent its ciphertext to
# clients, which sometimes send it back.
FERNET_TOKEN = re.compile(r"gAAAAA[A-Za-z0-9_\-]{92,}={0,2}")


@dataclasses.dataclass(frozen=True)
class StoredKey:
    """A tenant's saved credentials for one provider (decrypted by whoever looks them up)."""

    api_key: str | None
    api_base: str | None = None


@dataclasses.dataclass(frozen=True)
class Credentials:
    """What one call sends: a key (or none, for a keyless local endpoint), an endpoint, and where they came from."""

    api_key: str | None
    api_base: str | None
    source: KeySource
    # The endpoint came from a user (the request or a saved key), not from LLM_API_BASE: every call to it is
    # held to LLM_ALLOWED_HOSTS, at the addresses that were checked (LlmClient pins them).
    user_api_base: bool = False
    # Whose circuit breaker the call counts against (the tenant): one tenant's requests that time out or fail
    # (a crafted prompt, say) open that tenant's breaker for the deployment, never everyone's.
    breaker_scope: str = ""

    def __repr__(self) -> str:
        # Keep keys out of logs and tracebacks that print this object.
        shown = "None" if self.api_key is None else "'***'"
        return f"Credentials(api_key={shown}, api_base={self.api_base!r}, source={self.source!r})"


def resolve_credentials(
    model_id: str,
    *,
    request_key: str | None,
    request_api_base: str | None,
    stored_key_lookup: Callable[[str], StoredKey | None],
    server_default_key: Callable[[str], str | None],
    default_api_base: str | None,
) -> Credentials:
    """Choose the key and endpoint for ``model_id``: request > tenant's stored key > server default."""
    provider = provider_of(model_id)
    default_base = checked_api_base(default_api_base, ConfigurationError, "LLM_API_BASE")
    request_key = (request_key or "").strip() or None
    request_base = checked_api_base(request_api_base, BadRequest, "apiBase")
    if request_key:
        _refuse_ciphertext(request_key)
        return Credentials(request_key, request_base or default_base, "request", user_api_base=bool(request_base))
    if request_base:
        return Credentials(None, request_base, "none", user_api_base=True)
    stored = stored_key_lookup(provider)
    if stored is not None and (stored.api_key or stored.api_base):
        stored_base = checked_api_base(stored.api_base, BadRequest, "the saved apiBase")
        return Credentials(stored.api_key, stored_base or default_base, "tenant" if stored.api_key else "none",
                           user_api_base=bool(stored_base))
    server_key = server_default_key(provider)
    if server_key:
        return Credentials(server_key, default_base, "server")
    if default_base:
        return Credentials(None, default_base, "none")
    raise BadRequest(f"No API key for provider {provider}: send apiKey, save a key, or configure the server's "
                     "default", code="NO_API_KEY")


def _refuse_ciphertext(key: str) -> None:
    if FERNET_TOKEN.fullmatch(key):
        raise BadRequest("apiKey looks like an encrypted token (gAAAA...), not a provider key: send the "
                         "provider's key itself, or leave apiKey out to use your saved key", code="INVALID_API_KEY")


def checked_api_base(value: str | None, error: type[Exception], what: str) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        parsed = urllib.parse.urlsplit(value)
    except ValueError:
        raise error(f"{what} is not a URL") from None
    # The value is not echoed back: a mistyped URL may carry a password.
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise error(f"{what} must be an http(s) URL with a host")
    if parsed.username or parsed.password:
        raise error(f"{what} must not carry credentials in the URL")
    return value
