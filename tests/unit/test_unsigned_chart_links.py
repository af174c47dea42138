"""An instance that cannot sign chart links still answers: the links are left out, never the answer."""

from __future__ import annotations

import types

from common.auth import Tenant
from common.config import Settings
from common.services.pipeline.views import legacy_chart_url


def test_the_original_chart_url_is_empty_without_a_signing_secret():
    deps = types.SimpleNamespace(settings=Settings.from_env({}, url_signing_secret=""))
    assert legacy_chart_url(deps, Tenant("alice"), "c0123456789abcdef") == ""


def test_the_original_chart_url_is_signed_with_a_secret():
    deps = types.SimpleNamespace(settings=Settings.from_env({}, url_signing_secret="s" * 32))
    url = legacy_chart_url(deps, Tenant("alice"), "c0123456789abcdef")
    assert url.startswith("/charts/") and "c0123456789abcdef.html?" in url and "signature=" in url
