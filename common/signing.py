"""HMAC-signed URLs: a path the server hands out and later serves without asking who is calling.

A signed URL is ``<path>?<params>&expires=<unix seconds>&signature=<sig>``. The signature is HMAC-SHA256,
urlsafe base64 without padding, over the method, the path and every query parameter but ``signature``
(sorted), so changing any of them (the expiry, or a tenant named in a parameter) breaks it, and so does
adding one. ``verify`` compares in constant time. Sign the path exactly as the server will read it
(werkzeug's ``request.path``, percent-decoded): the URL handed out carries it percent-encoded, so any
character a name may hold (``#``, ``?``, ``%``, ``+``, spaces, non-ASCII) arrives at the server as it was signed.

Secrets come from ``URL_SIGNING_SECRET``: several may be given, comma-separated, so the secret can rotate
without breaking URLs already handed out (the first signs, every one verifies).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import urllib.parse
from collections.abc import Mapping, Sequence

from common.errors import ConfigurationError, Forbidden

MIN_SECRET_BYTES = 32
_RESERVED = ("expires", "signature")


def sign_path(path: str, *, secret: bytes, expires_at: int, params: Mapping[str, str] | None = None,
              method: str = "GET") -> str:
    """Return ``path`` percent-encoded, with ``params``, ``expires`` and a ``signature`` over them all as query."""
    if not path.startswith("/"):
        raise ValueError("sign an absolute path, as the server reads it (percent-decoded, no query)")
    params = dict(params or {})
    if any(name in params for name in _RESERVED):
        raise ValueError(f"parameters may not be named {_RESERVED}")
    signed = {**params, "expires": str(int(expires_at))}
    signature = _signature(secret, method, path, signed)
    # Signed decoded, sent encoded: a "#" or "?" in a name must reach the server as part of the path.
    return f"{urllib.parse.quote(path)}?{urllib.parse.urlencode(sorted(signed.items()))}&signature={signature}"


def verify(path: str, query_args: Mapping[str, str], *, secret: bytes | Sequence[bytes], now: float,
           method: str = "GET") -> None:
    """Raise ``Forbidden`` unless ``query_args`` carry an unexpired signature over ``path`` and themselves."""
    for name in query_args:
        getlist = getattr(query_args, "getlist", None)
        if getlist is not None and len(getlist(name)) > 1:
            raise Forbidden(f"the link repeats {name!r}", code="BAD_SIGNATURE")
    given = query_args.get("signature")
    expires = query_args.get("expires")
    if not given or not expires:
        raise Forbidden("the link is not signed", code="BAD_SIGNATURE")
    signed = {name: query_args[name] for name in query_args if name != "signature"}
    keys = [secret] if isinstance(secret, bytes | bytearray) else list(secret)
    # Check every secret, not stopping at a match, so the time taken says nothing about which one matched.
    given_bytes = given.encode("utf-8")
    matches = [hmac.compare_digest(_signature(key, method, path, signed).encode("ascii"), given_bytes)
               for key in keys]
    if not any(matches):
        raise Forbidden("the link's signature is not valid", code="BAD_SIGNATURE")
    if not expires.isdigit() or int(expires) <= now:
        raise Forbidden("the link has expired; ask for a new one", code="URL_EXPIRED")


class HmacUrlSigner:
    """Signs with the first secret and accepts any of them (rotation)."""

    def __init__(self, keys: Sequence[bytes]):
        if not keys or any(len(key) < MIN_SECRET_BYTES for key in keys):
            raise ConfigurationError(f"URL_SIGNING_SECRET needs secrets of at least {MIN_SECRET_BYTES} bytes")
        self._secrets = list(keys)

    @classmethod
    def from_setting(cls, value: str) -> HmacUrlSigner:
        """Build a signer from ``URL_SIGNING_SECRET`` (comma-separated secrets, newest first)."""
        parts = [part.strip().encode("utf-8") for part in value.split(",") if part.strip()]
        if not parts:
            raise ConfigurationError("URL_SIGNING_SECRET is empty: set it (the local emulator makes one at start)")
        return cls(parts)

    def sign(self, path: str, *, expires_at: int, params: Mapping[str, str] | None = None,
             method: str = "GET") -> str:
        """Return ``path`` signed for ``method`` until ``expires_at`` (unix seconds); see ``sign_path``."""
        return sign_path(path, secret=self._secrets[0], expires_at=expires_at, params=params, method=method)

    def verify(self, path: str, query_args: Mapping[str, str], *, now: float, method: str = "GET") -> None:
        """Raise ``Forbidden`` unless the query signs ``method`` on ``path`` and has not expired at ``now``."""
        verify(path, query_args, secret=self._secrets, now=now, method=method)


def generate_secret() -> str:
    """Return a fresh random secret for ``URL_SIGNING_SECRET`` (the emulator's default when none is set)."""
    return secrets.token_urlsafe(MIN_SECRET_BYTES)


def _signature(secret: bytes, method: str, path: str, params: Mapping[str, str]) -> str:
    query = urllib.parse.urlencode(sorted(params.items()))
    message = "\n".join(("v1", method.upper(), path, query)).encode("utf-8")
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
