"""Secrets the emulator needs but a laptop has not configured: made once, kept in the data directory.

Kept, not regenerated per start, so that what they protect outlives a restart: a chart URL the frontend
stored, a provider key saved encrypted.
"""

from __future__ import annotations

import json
import os

from common.config import Settings

FILE_NAME = "local-secrets.json"


def with_local_secrets(settings: Settings) -> Settings:
    """Fill ENCRYPTION_KEYS and URL_SIGNING_SECRET from the data directory when they are not set."""
    if settings.encryption_keys and settings.url_signing_secret:
        return settings
    stored = _load_or_create(os.path.join(settings.data_dir, FILE_NAME))
    return settings.replace(encryption_keys=settings.encryption_keys or stored["encryption_keys"],
                            url_signing_secret=settings.url_signing_secret or stored["url_signing_secret"])


def _load_or_create(path: str) -> dict[str, str]:
    from common.crypto import generate_key
    from common.signing import generate_secret

    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(path), exist_ok=True)
    secrets = {"encryption_keys": generate_key(), "url_signing_secret": generate_secret()}
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made them first: use theirs
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(secrets, handle)
    return secrets
