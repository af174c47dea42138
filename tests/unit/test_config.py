"""Settings: every one documented in the README, parsed strictly, validated together."""

import os
import re

import pytest

from common.config import SETTINGS, Settings
from common.errors import ConfigurationError

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")


def test_every_setting_is_in_the_readme_table():
    with open(README, encoding="utf-8") as handle:
        documented = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", handle.read(), flags=re.MULTILINE))
    missing = {setting.env for setting in SETTINGS} - documented
    assert not missing, f"settings missing from the README configuration table: {sorted(missing)}"
    stale = documented - {setting.env for setting in SETTINGS}
    assert not stale, f"README documents settings that do not exist: {sorted(stale)}"


def test_defaults_need_no_cloud():
    settings = Settings.from_env({})
    assert (settings.storage_backend, settings.metadata_backend, settings.auth_mode) == ("local", "sql", "dev")


def test_values_are_parsed_from_the_environment():
    settings = Settings.from_env({"MAX_UPLOAD_BYTES": "1024", "CORS_ORIGINS": "https://a, https://b"})
    assert settings.max_upload_bytes == 1024
    assert settings.cors_origins == ("https://a", "https://b")


@pytest.mark.parametrize("environ,fragment", [
    ({"MAX_UPLOAD_BYTES": "lots"}, "MAX_UPLOAD_BYTES"),
    ({"STORAGE_BACKEND": "s3"}, "STORAGE_BACKEND"),
    ({"AUTH_MODE": "token"}, "AUTH_TOKEN_SECRET"),
    ({"STORAGE_BACKEND": "gcs"}, "GCS_BUCKET"),
])
def test_bad_configuration_names_the_variable(environ, fragment):
    with pytest.raises(ConfigurationError, match=fragment):
        Settings.from_env(environ)


def test_prod_refuses_to_start_with_callers_naming_themselves():
    with pytest.raises(ConfigurationError, match="AUTH_MODE=dev"):
        Settings.from_env({"ENVIRONMENT": "prod"})
    assert Settings.from_env({"ENVIRONMENT": "prod", "AUTH_MODE": "gateway"}).auth_mode == "gateway"
