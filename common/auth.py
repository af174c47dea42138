"""Who is calling: the one place a request becomes a ``Tenant``.

- ``gateway`` (cloud): API Gateway has verified the caller's JWT and forwards its claims, base64url-encoded,
  in ``X-Apigateway-Api-Userinfo``; the functions only accept calls from the gateway's service account.
- ``token``: ``Authorization: Bearer <HS256 JWT>`` signed with ``AUTH_TOKEN_SECRET`` (``make token``).
- ``dev`` (the emulator's default): ``X-User-Id``, else the legacy ``userId`` field, else ``DEV_USER``.

In every mode, a legacy ``userId`` field that differs from the verified identity is refused with 403: a
body field never chooses whose data a request touches.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
import time

from common import errors
from common.config import Settings

GATEWAY_HEADER = "X-Apigateway-Api-Userinfo"
_READABLE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclasses.dataclass(frozen=True)
class Tenant:
    """The caller. ``namespace`` is the caller's id made safe for object paths and cache keys."""

    user_id: str

    @property
    def namespace(self) -> str:
        # Readable ids stay readable; anything else is hashed. "~" never occurs in a readable id,
        # so a hashed namespace can never equal a readable one.
        if _READABLE_ID.match(self.user_id):
            return self.user_id
        return "~" + hashlib.sha256(self.user_id.encode("utf-8")).hexdigest()[:40]


def authenticate(headers, settings: Settings, *, legacy_user_id: str | None = None) -> Tenant:
    """Return the verified caller of a request with these ``headers`` (a Mapping), or raise 401/403."""
    if settings.auth_mode == "gateway":
        user_id = _from_gateway(headers)
    elif settings.auth_mode == "token":
        user_id = _from_token(headers, settings.auth_token_secret)
    else:
        user_id = headers.get("X-User-Id") or legacy_user_id or settings.dev_user
        if not user_id:
            raise errors.Unauthorized("no caller identity: send an X-User-Id header (AUTH_MODE=dev)")
    user_id = _check_user_id(user_id)
    if legacy_user_id is not None and legacy_user_id != user_id:
        raise errors.Forbidden("userId does not match the authenticated user")
    return Tenant(user_id)


def _check_user_id(user_id: object) -> str:
    if not isinstance(user_id, str) or not user_id.strip() or len(user_id) > 256:
        raise errors.Unauthorized("invalid caller identity")
    if any(ord(ch) < 32 for ch in user_id):
        raise errors.Unauthorized("invalid caller identity")
    return user_id


def _from_gateway(headers) -> str:
    encoded = headers.get(GATEWAY_HEADER)
    if not encoded:
        raise errors.Unauthorized("missing verified identity from the API gateway")
    try:
        padded = encoded + "=" * (-len(encoded) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, TypeError):
        raise errors.Unauthorized("unreadable identity from the API gateway") from None
    user_id = claims.get("sub") or claims.get("user_id") if isinstance(claims, dict) else None
    if not user_id:
        raise errors.Unauthorized("the verified identity has no subject")
    return user_id


def _from_token(headers, secret: str) -> str:
    import jwt  # only token mode pays for it

    header = headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise errors.Unauthorized("send Authorization: Bearer <token>")
    try:
        claims = jwt.decode(token.strip(), secret, algorithms=["HS256"], options={"require": ["sub", "exp"]})
    except jwt.ExpiredSignatureError:
        raise errors.Unauthorized("the token has expired") from None
    except jwt.InvalidTokenError as exc:
        raise errors.Unauthorized(f"invalid token: {exc}") from None
    return claims["sub"]


def issue_token(user_id: str, secret: str, *, ttl_seconds: int = 7 * 24 * 3600, now: float | None = None) -> str:
    """Sign a bearer token for ``user_id`` (``make token``; tests)."""
    import jwt

    issued = int(now if now is not None else time.time())
    return jwt.encode({"sub": user_id, "iat": issued, "exp": issued + ttl_seconds}, secret, algorithm="HS256")
