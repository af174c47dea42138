"""Credentials: request > the tenant's saved key > the server's default, and keys only go where they belong."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from common.errors import BadRequest, ConfigurationError
from common.llm.keys import Credentials, StoredKey, resolve_credentials

MODEL = "gemini/gemini-2.5-flash"


class Lookups:
    """A tenant's saved keys and the server's keys, per provider, recording what was asked."""

    def __init__(self, stored: dict[str, StoredKey] | None = None, server: dict[str, str] | None = None):
        self.stored = stored or {}
        self.server = server or {}
        self.asked: list[tuple[str, str]] = []

    def stored_key(self, provider: str) -> StoredKey | None:
        self.asked.append(("tenant", provider))
        return self.stored.get(provider)

    def server_key(self, provider: str) -> str | None:
        self.asked.append(("server", provider))
        return self.server.get(provider)


def resolve(lookups: Lookups, model_id: str = MODEL, *, key: str | None = None, base: str | None = None,
            default_base: str | None = None) -> Credentials:
    return resolve_credentials(model_id, request_key=key, request_api_base=base,
                               stored_key_lookup=lookups.stored_key, server_default_key=lookups.server_key,
                               default_api_base=default_base)


FULL = Lookups(stored={"gemini": StoredKey("tenant-gemini-key")}, server={"gemini": "server-gemini-key"})


def test_the_requests_key_comes_first():
    assert resolve(FULL, key="request-key") == Credentials("request-key", None, "request")


def test_then_the_tenants_saved_key_for_that_provider():
    lookups = Lookups(stored={"gemini": StoredKey("tenant-gemini-key"), "openai": StoredKey("tenant-openai-key")},
                      server={"gemini": "server-gemini-key"})
    assert resolve(lookups) == Credentials("tenant-gemini-key", None, "tenant")
    assert ("tenant", "gemini") in lookups.asked


def test_then_the_servers_default_for_that_provider():
    lookups = Lookups(stored={"openai": StoredKey("tenant-openai-key")}, server={"gemini": "server-gemini-key"})
    assert resolve(lookups) == Credentials("server-gemini-key", None, "server")
    assert lookups.asked == [("tenant", "gemini"), ("server", "gemini")]


def test_no_key_anywhere_is_a_400_naming_the_provider():
    with pytest.raises(BadRequest) as caught:
        resolve(Lookups(server={"gemini": "server-gemini-key"}), "openai/gpt-4o")
    assert caught.value.status == 400
    assert caught.value.message.startswith("No API key for provider openai: send apiKey, save a key")


def test_an_encrypted_token_sent_as_the_key_is_refused():
    # The original's /validate-key returned Fernet ciphertext to clients, who may send it back as apiKey.
    token = Fernet(Fernet.generate_key()).encrypt(b"sk-real-key").decode()
    with pytest.raises(BadRequest) as caught:
        resolve(FULL, key=token)
    assert caught.value.code == "INVALID_API_KEY"
    assert token not in caught.value.message


def test_a_key_that_merely_starts_like_a_token_is_accepted():
    assert resolve(FULL, key="gAAAAkey-from-some-provider").source == "request"


def test_the_servers_endpoint_applies_to_request_and_saved_keys():
    # LLM_API_BASE is the operator's, so user_api_base stays False: it is not held to LLM_ALLOWED_HOSTS.
    base = "http://127.0.0.1:8000/v1"
    assert resolve(FULL, key="request-key", default_base=base) == Credentials("request-key", base, "request")
    assert resolve(FULL, default_base=base) == Credentials("tenant-gemini-key", base, "tenant")


def test_a_saved_endpoint_goes_with_the_saved_key():
    lookups = Lookups(stored={"openai": StoredKey("tenant-key", "https://gateway.example.com/v1")})
    creds = resolve(lookups, "openai/llama3", default_base="http://127.0.0.1:8000/v1")
    assert creds == Credentials("tenant-key", "https://gateway.example.com/v1", "tenant", user_api_base=True)


def test_a_keyless_local_endpoint_works():
    assert resolve(Lookups(), "openai/llama3", default_base="http://127.0.0.1:11434/v1") == \
        Credentials(None, "http://127.0.0.1:11434/v1", "none")
    saved_endpoint_only = Lookups(stored={"openai": StoredKey(None, "http://127.0.0.1:1234/v1")})
    assert resolve(saved_endpoint_only, "openai/llama3") == \
        Credentials(None, "http://127.0.0.1:1234/v1", "none", user_api_base=True)


def test_an_endpoint_named_by_the_request_never_receives_a_saved_or_server_key():
    attacker_url = "https://collector.example.net/v1"
    creds = resolve(FULL, base=attacker_url)
    assert creds == Credentials(None, attacker_url, "none", user_api_base=True)
    assert resolve(FULL, key="own-key", base=attacker_url) == \
        Credentials("own-key", attacker_url, "request", user_api_base=True)


@pytest.mark.parametrize("base", ["ftp://host/v1", "localhost:8000", "http://", "file:///etc/passwd",
                                  "http://user:secret@host/v1", "http://[::1"])
def test_a_request_endpoint_must_be_a_plain_http_url(base):
    with pytest.raises(BadRequest) as caught:
        resolve(FULL, key="k", base=base)
    assert "secret" not in caught.value.message


def test_a_bad_server_endpoint_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="LLM_API_BASE"):
        resolve(FULL, default_base="127.0.0.1:8000")


def test_credentials_never_print_the_key():
    assert "request-key" not in repr(Credentials("request-key", None, "request"))
    assert "request-key" not in str([Credentials("request-key", None, "request")])
