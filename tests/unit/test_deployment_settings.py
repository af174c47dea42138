"""The settings that let each cloud function do only what its own account may: readiness probes, direct uploads."""

import pytest

from common import bootstrap
from common.config import Settings
from common.errors import ConfigurationError


def test_readiness_probes_every_backend_by_default_and_the_named_ones_when_set():
    assert Settings.from_env({}).readiness_checks == ("storage", "metadata", "cache", "tasks")
    settings = Settings.from_env({"READINESS_CHECKS": " metadata, cache "})
    assert settings.readiness_checks == ("metadata", "cache")
    assert set(bootstrap.Context(settings).backends()) == {"metadata:sql", "cache:memory"}


@pytest.mark.parametrize("value", ["metadata,firestore", "", " , "])
def test_readiness_checks_must_name_known_backends(value):
    with pytest.raises(ConfigurationError, match="READINESS_CHECKS"):
        Settings.from_env({"READINESS_CHECKS": value})


def test_direct_uploads_have_a_limit_of_their_own():
    settings = Settings.from_env({"MAX_UPLOAD_BYTES": "1024", "DIRECT_UPLOAD_MAX_BYTES": "4096"})
    assert (settings.max_upload_bytes, settings.direct_upload_max_bytes) == (1024, 4096)
    assert Settings.from_env({}).direct_upload_max_bytes == 1024**3
    with pytest.raises(ConfigurationError, match="DIRECT_UPLOAD_MAX_BYTES"):
        Settings.from_env({"DIRECT_UPLOAD_MAX_BYTES": "0"})
