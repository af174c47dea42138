"""What counts as a dependency's outage: only those open a breaker.

A failure the caller caused (bad SQL, a refused API key, a 404 blob, a malformed request) says the dependency
answered, so it counts as a success: it resets the run of failures and closes a half-open breaker.
"""

from __future__ import annotations

from common.errors import AppError, DependencyUnavailable, ServiceUnavailable

# LlmClient's kinds of a failed attempt (common.llm.runtime) that mean the deployment is down. A 429 is not
# one: it is the caller's key over its quota, and another tenant's key may still be served.
MODEL_OUTAGE_KINDS = frozenset({"server_error", "timeout", "connection"})

# Codes of common.services.postgres.engines: the server cannot be reached, or is shutting down. Not PG_BUSY
# (out of resources for one statement) nor the pool's own "every connection is busy" (load on this instance).
POSTGRES_OUTAGE_CODES = frozenset({"PG_UNREACHABLE", "PG_UNAVAILABLE"})


def is_backend_outage(exc: BaseException) -> bool:
    """Whether a port (blobs, metadata, cache, tasks) failed as a whole: its adapter says ServiceUnavailable."""
    if isinstance(exc, DependencyUnavailable):
        return False  # another breaker's verdict (a store behind a store), not this dependency's failure
    return isinstance(exc, (ServiceUnavailable, TimeoutError, ConnectionError))


def is_postgres_outage(exc: BaseException) -> bool:
    """Whether a saved Postgres connection's server could not be reached (not: the SQL or the login was wrong)."""
    if isinstance(exc, AppError):
        return exc.code in POSTGRES_OUTAGE_CODES
    return isinstance(exc, (TimeoutError, ConnectionError))
