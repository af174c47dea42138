"""Secrets at rest (request API keys held for a running question, stored provider keys and database
passwords), encrypted with MultiFernet so the key can rotate: the first key encrypts, every key decrypts,
and ``rotate`` re-encrypts a ciphertext under the first key so an old key can be retired
(``common.services.key_rotation``)."""

from __future__ import annotations

from common import errors


class Encryptor:
    """Encrypts and decrypts short strings with the configured keys."""

    def __init__(self, keys: str):
        from cryptography.fernet import Fernet, MultiFernet

        parts = [part.strip() for part in keys.split(",") if part.strip()]
        if not parts:
            raise errors.ConfigurationError("ENCRYPTION_KEYS is empty: secrets cannot be stored")
        try:
            fernets = [Fernet(part.encode()) for part in parts]
        except ValueError:
            raise errors.ConfigurationError("ENCRYPTION_KEYS holds a key that is not a Fernet key") from None
        self._fernet = MultiFernet(fernets)
        self._first = fernets[0]

    def encrypt(self, plaintext: str) -> str:
        """Return the ciphertext of ``plaintext`` under the first key."""
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        """Return the plaintext, or raise ConfigurationError when no configured key opens it."""
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(ciphertext.encode("ascii")).decode("utf-8")
        except (InvalidToken, ValueError):
            raise _undecryptable() from None

    def rotate(self, ciphertext: str) -> str:
        """Return ``ciphertext`` encrypted again under the first key (same plaintext, same timestamp).

        Raises ConfigurationError, as ``decrypt`` does, when no configured key opens it.
        """
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.rotate(ciphertext.encode("ascii")).decode("ascii")
        except (InvalidToken, ValueError):
            raise _undecryptable() from None

    def is_current(self, ciphertext: str) -> bool:
        """Tell whether the first key alone opens ``ciphertext``, so re-encrypting it would change nothing."""
        from cryptography.fernet import InvalidToken

        try:
            self._first.decrypt(ciphertext.encode("ascii"))
        except (InvalidToken, ValueError):
            return False
        return True


def _undecryptable() -> errors.ConfigurationError:
    return errors.ConfigurationError("a stored secret cannot be decrypted with ENCRYPTION_KEYS "
                                     "(was a key removed before re-encryption?)")


def generate_key() -> str:
    """Return a new random Fernet key."""
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode("ascii")
