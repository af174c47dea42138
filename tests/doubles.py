"""Test doubles, named for what they are."""

import functools

from common import errors


class MetadataThatFailsOnPut:
    """The real metadata store, except that writing a record fails (as an outage would)."""

    def __init__(self, real):
        self.real = real

    def put(self, *args, **kwargs):
        raise errors.ServiceUnavailable("metadata store is down")

    def __getattr__(self, name):
        return getattr(self.real, name)


class CacheThatIsDown:
    """A cache whose server cannot be reached."""

    def get(self, key):
        raise errors.ServiceUnavailable("cache unavailable")

    def set(self, key, value, ttl_seconds):
        raise errors.ServiceUnavailable("cache unavailable")

    def append(self, key, item, ttl_seconds):
        raise errors.ServiceUnavailable("cache unavailable")

    def items(self, key, start=0):
        raise errors.ServiceUnavailable("cache unavailable")


def anonymous_signing_credentials():
    """Credentials for the GCS emulator: they ask for no token (anonymous), yet sign URLs locally with a
    throwaway key, as a service account would, so signed-URL code runs without any network."""
    from google.auth import credentials, crypt
    from google.auth.credentials import AnonymousCredentials

    class AnonymousSigner(AnonymousCredentials, credentials.Signing):
        def sign_bytes(self, message: bytes) -> bytes:
            return self.signer.sign(message)

        @property
        def signer_email(self) -> str:
            return "functions@test-proj.iam.gserviceaccount.com"

        @property
        def signer(self):
            return crypt.RSASigner.from_string(_throwaway_private_key(), key_id="test")

    return AnonymousSigner()


@functools.cache
def _throwaway_private_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


class TaskQueueRecordingDeletes:
    """A real task queue that also notes the name of every task it is asked to delete."""

    def __init__(self, real):
        self._real, self.deleted = real, []

    def delete(self, name):
        self.deleted.append(name)
        return self._real.delete(name)

    def __getattr__(self, name):
        return getattr(self._real, name)


class MetadataHoldingOnePut:
    """A real metadata store whose first write to ``collection`` waits, once it has begun, until ``release`` is
    set: a commit held inside the window a concurrent operation must not break. ``holding`` says it waits."""

    def __init__(self, real, collection):
        import threading

        self._real, self._collection = real, collection
        self.holding, self.release = threading.Event(), threading.Event()

    def put(self, collection, *args, **kwargs):
        if collection == self._collection and not self.holding.is_set():
            self.holding.set()
            assert self.release.wait(30), "the test never released the held write"
        return self._real.put(collection, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._real, name)
