"""Identity: each mode's credential, and a legacy userId that disagrees is always 403."""

import base64
import json

import pytest

from common import errors
from common.auth import GATEWAY_HEADER, Tenant, authenticate, issue_token
from common.config import Settings

SECRET = "unit-test-secret-that-is-32-bytes-long"


def settings(mode, **extra):
    return Settings.from_env({}, auth_mode=mode, auth_token_secret=SECRET if mode == "token" else "", **extra)


def gateway_header(claims):
    return base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")


def test_dev_mode_header_then_legacy_field_then_default():
    assert authenticate({"X-User-Id": "alice"}, settings("dev")).user_id == "alice"
    assert authenticate({}, settings("dev"), legacy_user_id="bob").user_id == "bob"
    assert authenticate({}, settings("dev", dev_user="carol")).user_id == "carol"
    with pytest.raises(errors.Unauthorized):
        authenticate({}, settings("dev"))


def test_token_mode_accepts_signed_token_only():
    token = issue_token("alice", SECRET)
    assert authenticate({"Authorization": f"Bearer {token}"}, settings("token")).user_id == "alice"
    forged = issue_token("alice", "another-secret-that-is-also-32-bytes")
    for headers in ({}, {"Authorization": f"Bearer {forged}"}, {"Authorization": "Basic abc"},
                    {"X-User-Id": "alice"}):
        with pytest.raises(errors.Unauthorized):
            authenticate(headers, settings("token"))


def test_token_mode_refuses_expired_token():
    token = issue_token("alice", SECRET, ttl_seconds=10, now=1_000_000)
    with pytest.raises(errors.Unauthorized, match="expired"):
        authenticate({"Authorization": f"Bearer {token}"}, settings("token"))


def test_gateway_mode_reads_verified_claims():
    headers = {GATEWAY_HEADER: gateway_header({"sub": "firebase-uid-1", "email": "a@example.com"})}
    assert authenticate(headers, settings("gateway")).user_id == "firebase-uid-1"
    with pytest.raises(errors.Unauthorized):
        authenticate({"X-User-Id": "alice"}, settings("gateway"))
    with pytest.raises(errors.Unauthorized):
        authenticate({GATEWAY_HEADER: "%%%"}, settings("gateway"))


@pytest.mark.parametrize("mode", ["dev", "token", "gateway"])
def test_mismatched_legacy_user_id_is_forbidden_in_every_mode(mode):
    headers = {"X-User-Id": "alice", "Authorization": f"Bearer {issue_token('alice', SECRET)}",
               GATEWAY_HEADER: gateway_header({"sub": "alice"})}
    assert authenticate(headers, settings(mode), legacy_user_id="alice").user_id == "alice"
    with pytest.raises(errors.Forbidden):
        authenticate(headers, settings(mode), legacy_user_id="bob")


def test_namespace_is_safe_and_distinct():
    assert Tenant("alice_01").namespace == "alice_01"
    weird = Tenant("../../etc")
    assert "/" not in weird.namespace and weird.namespace.startswith("~")
    assert Tenant("a/b").namespace != Tenant("a_b").namespace
