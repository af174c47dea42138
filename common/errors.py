"""The one error hierarchy. Each class carries its HTTP status and a stable machine-readable code.

Services and adapters raise these; the HTTP layer turns them into the one error body
``{"error": {"code", "message", "details"}}`` (or the legacy ``{"detail", "code"}``). Adapters translate
vendor exceptions into these at their boundary, so no service ever imports a vendor's exception.
"""

from __future__ import annotations

import copy
from typing import Any


class AppError(Exception):
    status = 500
    code = "INTERNAL"

    def __init__(self, message: str = "", *, code: str | None = None, details: Any = None):
        super().__init__(message or self.__class__.__name__)
        self.message = message or self.__class__.__name__
        if code:
            self.code = code
        self.details = details

    def with_message(self, message: str) -> AppError:
        """A copy of this error that says ``message`` (context added as it passes up); the original is unchanged."""
        clone = copy.copy(self)
        clone.message = message
        clone.args = (message,)
        return clone


class BadRequest(AppError):
    status, code = 400, "BAD_REQUEST"


class Unauthorized(AppError):
    status, code = 401, "UNAUTHENTICATED"


class Forbidden(AppError):
    status, code = 403, "FORBIDDEN"


class NotFound(AppError):
    status, code = 404, "NOT_FOUND"


class MethodNotAllowed(AppError):
    status, code = 405, "METHOD_NOT_ALLOWED"

    def __init__(self, message: str = "", *, allowed: tuple[str, ...] = (), **kwargs: Any):
        super().__init__(message, **kwargs)
        self.allowed = allowed


class Conflict(AppError):
    """A write lost a race (compare-and-set) or the target already exists."""

    status, code = 409, "CONFLICT"


class Gone(AppError):
    status, code = 410, "GONE"


class PayloadTooLarge(AppError):
    status, code = 413, "PAYLOAD_TOO_LARGE"


class UnsupportedMediaType(AppError):
    status, code = 415, "UNSUPPORTED_MEDIA_TYPE"


class RateLimited(AppError):
    status, code = 429, "RATE_LIMITED"

    def __init__(self, message: str = "", *, retry_after: int = 1, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class UpstreamError(AppError):
    status, code = 502, "UPSTREAM_ERROR"


class ServiceUnavailable(AppError):
    status, code = 503, "UNAVAILABLE"


class DependencyUnavailable(RateLimited):
    """A dependency's circuit breaker is open: failed at once, without calling it, until its half-open probe.

    ``RateLimited`` lends it ``retry_after``, which the router sends as ``Retry-After`` (the seconds until the
    breaker lets a probe through). It is no ``ServiceUnavailable``: like the provider's or the database's own
    failure it stands for (a 502), it ends a question at once instead of giving it back to the queue. The
    backend ports' breakers raise a subclass that is one (``common.breakers.port.BackendUnavailable``).
    """

    status, code = 503, "DEPENDENCY_UNAVAILABLE"

    def __init__(self, dependency: str, *, retry_after: int = 1, message: str = ""):
        super().__init__(message or f"{dependency} is unavailable (its circuit breaker is open); "
                         f"retry after {retry_after} s",
                         retry_after=retry_after, details={"dependency": dependency, "retry_after": retry_after})
        self.dependency = dependency


class ConfigurationError(AppError):
    """The instance is misconfigured; raised at start-up, never because of a request."""

    status, code = 500, "CONFIGURATION"


def stored_error(status: Any, message: str, code: str) -> AppError:
    """An error recorded earlier (a failed job's), raised again with its status: a 4xx or 5xx, else 502."""
    error = AppError(message, code=code)
    error.status = status if isinstance(status, int) and 400 <= status < 600 else UpstreamError.status
    return error
