"""Circuit breakers: a dependency that keeps failing is failed at once, until a probe finds it back.

One breaker per dependency that can fail as a whole, named by ``names``: each model deployment
(``model:<provider/model>@<api base>``), each saved Postgres connection (``postgres:<user>/<connection>``), and
the ``blobs``, ``metadata``, ``cache`` and ``tasks`` backends. The state machine is pybreaker's: after
BREAKER_FAILURE_THRESHOLD outages in a row (``failures``: connection refused, timeouts, 5xx; never a caller's
own mistake) the breaker opens; for BREAKER_RESET_SECONDS every call fails at once with ``DependencyUnavailable``
(503, ``Retry-After``), or a model call goes straight to its fallback model; then the next call is let through
as a probe, and closes the breaker when it works or opens it again when it fails.

With CACHE_BACKEND=redis the state lives in Redis, shared by every instance (``storage``); otherwise, and always
for the cache's own breaker (Redis cannot keep the state of Redis), it is per instance.
"""

from common.breakers.guard import Guard
from common.breakers.registry import BreakerRegistry, registry_for

__all__ = ["BreakerRegistry", "Guard", "registry_for"]
