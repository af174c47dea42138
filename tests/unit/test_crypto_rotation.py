"""Encryptor.rotate and is_current: what re-encryption (common.services.key_rotation) relies on."""

import pytest

from common.crypto import Encryptor, generate_key
from common.errors import ConfigurationError


def test_rotate_moves_a_ciphertext_under_the_first_key_alone():
    old, new = generate_key(), generate_key()
    stored = Encryptor(old).encrypt("sk-secret")
    both = Encryptor(f"{new},{old}")
    assert not both.is_current(stored)
    rotated = both.rotate(stored)
    assert both.is_current(rotated) and Encryptor(new).decrypt(rotated) == "sk-secret"
    with pytest.raises(ConfigurationError):
        Encryptor(old).decrypt(rotated)


def test_is_current_is_false_for_what_no_key_or_only_a_later_key_opens():
    first, second = generate_key(), generate_key()
    keys = Encryptor(f"{first},{second}")
    assert keys.is_current(Encryptor(first).encrypt("x"))
    assert not keys.is_current(Encryptor(second).encrypt("x"))
    assert not keys.is_current(Encryptor(generate_key()).encrypt("x"))
    assert not keys.is_current("not a token") and not keys.is_current("gAAAAé")


def test_rotate_refuses_a_ciphertext_no_key_opens_without_showing_it():
    stored = Encryptor(generate_key()).encrypt("sk-secret")
    with pytest.raises(ConfigurationError) as refused:
        Encryptor(generate_key()).rotate(stored)
    assert stored not in str(refused.value) and "sk-secret" not in str(refused.value)


def test_reencryption_names_the_collections_their_services_store_secrets_in():
    from common.services import key_rotation, query_jobs
    from common.services.llm_config import stored_keys
    from common.services.postgres import connections

    named = [field.collection for field in key_rotation.SECRET_FIELDS]
    assert named == [stored_keys.COLLECTION, connections.COLLECTION, query_jobs.COLLECTION]
