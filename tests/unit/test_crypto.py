"""Secrets at rest: round trip, rotation, and a clear error when the key is gone."""

import pytest

from common import errors
from common.crypto import Encryptor, generate_key


def test_round_trip_and_rotation():
    old, new = generate_key(), generate_key()
    stored = Encryptor(old).encrypt("sk-secret")
    assert "sk-secret" not in stored
    rotated = Encryptor(f"{new},{old}")
    assert rotated.decrypt(stored) == "sk-secret"
    assert Encryptor(new).decrypt(rotated.encrypt("sk-secret")) == "sk-secret"


def test_a_missing_key_is_a_clear_error():
    stored = Encryptor(generate_key()).encrypt("x")
    with pytest.raises(errors.ConfigurationError, match="cannot be decrypted"):
        Encryptor(generate_key()).decrypt(stored)
    with pytest.raises(errors.ConfigurationError):
        Encryptor("")
    with pytest.raises(errors.ConfigurationError):
        Encryptor("not-a-key")
