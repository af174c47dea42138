"""Test doubles, named for what they are."""

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
