"""The composition root: settings become concrete adapters here, lazily, once per instance.

This is the only module that imports adapters (storage, metadata, cache, tasks, the model client, prompts,
charts, the encryptor); services receive the ``Context`` typed as the ports they use (``common.ports``).
Nothing connects at import time. A function asks ``context()`` for what it needs when a request needs it,
so the health function never builds a storage client and no cold start pays for an unused backend.
Tests build their own ``Context`` (``build(...)``) and install it with ``use(...)``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from common.clock import Clock, SystemClock
from common.config import Settings
from common.errors import ConfigurationError

if TYPE_CHECKING:  # the adapters themselves are imported by the factories below, when first needed
    from common.breakers import BreakerRegistry
    from common.cache import Cache
    from common.charts.store import ChartStore
    from common.crypto import Encryptor
    from common.llm.client import LlmClient
    from common.metadata import MetadataStore
    from common.prompts.loader import PromptCatalog
    from common.ratelimit import RateLimiter
    from common.storage import BlobStore
    from common.tasks import TaskQueue

T = TypeVar("T")

log = logging.getLogger("convoinsight.bootstrap")


def _local_blobs(settings: Settings) -> BlobStore:
    from common.storage.local import LocalBlobStore

    return LocalBlobStore(os.path.join(settings.data_dir, "blobs"))


def _gcs_blobs(settings: Settings) -> BlobStore:
    from common.storage.gcs import GcsBlobStore

    return GcsBlobStore(settings.gcs_bucket)


def _sql_metadata(settings: Settings, clock: Clock) -> MetadataStore:
    from common.metadata.sql import SqlMetadataStore
    from common.metadata.sql_engine import create_engine_for

    engine = create_engine_for(settings.database_url, cloud_sql_instance=settings.cloud_sql_instance,
                               data_dir=settings.data_dir)
    return SqlMetadataStore(engine, clock=clock, table_prefix=settings.collection_prefix)


def _firestore_metadata(settings: Settings, clock: Clock) -> MetadataStore:
    from google.cloud import firestore

    from common.metadata.firestore import FirestoreMetadataStore

    client = firestore.Client(project=settings.gcp_project or None, database=settings.firestore_database)
    return FirestoreMetadataStore(client, clock=clock, collection_prefix=settings.collection_prefix)


def _memory_cache(settings: Settings, clock: Clock) -> Cache:
    from common.cache import MemoryCache

    return MemoryCache(clock=clock)


def _redis_cache(settings: Settings, clock: Clock) -> Cache:
    from common.cache import RedisCache

    return RedisCache(settings.redis_url, prefix=settings.collection_prefix)


BLOB_STORES: dict[str, Callable[[Settings], BlobStore]] = {"local": _local_blobs, "gcs": _gcs_blobs}
METADATA_STORES: dict[str, Callable[[Settings, Clock], MetadataStore]] = {
    "sql": _sql_metadata,
    "firestore": _firestore_metadata,
}
CACHES: dict[str, Callable[[Settings, Clock], Cache]] = {"memory": _memory_cache, "redis": _redis_cache}


def _local_tasks(settings: Settings, clock: Clock) -> TaskQueue:
    # The local dispatcher calls the agents function in process, which only the emulator that loaded it can
    # reach; the emulator builds the queue and passes it in as the `tasks` part.
    raise ConfigurationError("TASKS_BACKEND=local: the local task queue is created by the local emulator "
                             "(python -m local_emulator) and passed to bootstrap.build(settings, tasks=...); "
                             "outside the emulator set TASKS_BACKEND=cloudtasks")


def _cloud_tasks(settings: Settings, clock: Clock) -> TaskQueue:
    from common.tasks.cloud import CloudTasksQueue

    _, project, _, location, _, queue = settings.tasks_queue.split("/")  # the shape Settings.validate checked
    return CloudTasksQueue(project, location, queue, settings.tasks_target_url, settings.tasks_service_account,
                           clock=clock)


TASK_QUEUES: dict[str, Callable[[Settings, Clock], TaskQueue]] = {"local": _local_tasks, "cloudtasks": _cloud_tasks}


class Context:
    """Every port a request may need, each built on first use (under one lock) and kept for the instance.

    It satisfies every bundle in ``common.ports``: services receive it typed as the ports they use. The backends
    it builds (blobs, metadata, cache, tasks) come behind their circuit breakers (``common.breakers``); a part a
    caller gives is used as it is.
    """

    def __init__(self, settings: Settings, *, clock: Clock | None = None, **given: Any):
        unknown = set(given) - set(PARTS)
        if unknown:
            raise TypeError(f"not a part of the context: {', '.join(sorted(unknown))}")
        self.settings = settings
        self.clock = clock or SystemClock()
        for name, part in given.items():
            if part is not None:
                self.__dict__[name] = part  # a given part stands in for what its property would build
        self._given = {name for name, part in given.items() if part is not None}
        self._lock = threading.RLock()  # re-entrant: the chart store builds the blob store it needs

    def _guarded(self, name: str, make: Callable[[], T], *, shared: bool = True) -> T:
        """Build a backend port behind its circuit breaker (the parts a caller gave are used as they are)."""
        from common.breakers.port import GuardedPort

        return GuardedPort(make(), self.breakers.guard(name, shared=shared))  # type: ignore[return-value]

    def _built(self, name: str, make: Callable[[], T]) -> T:
        part = self.__dict__.get(name)
        if part is not None:
            return part  # built already: no lock on the request path
        with self._lock:
            if name not in self.__dict__:
                self.__dict__[name] = make()
            return self.__dict__[name]

    @property
    def blobs(self) -> BlobStore:
        """The blob store chosen by ``STORAGE_BACKEND``."""
        return self._built("blobs", lambda: self._guarded(
            "blobs", lambda: BLOB_STORES[self.settings.storage_backend](self.settings)))

    @property
    def metadata(self) -> MetadataStore:
        """The metadata store chosen by ``METADATA_BACKEND``."""
        return self._built("metadata", lambda: self._guarded(
            "metadata", lambda: METADATA_STORES[self.settings.metadata_backend](self.settings, self.clock)))

    @property
    def cache(self) -> Cache:
        """The cache chosen by ``CACHE_BACKEND``; its breaker is per instance (Redis cannot keep Redis's state)."""
        return self._built("cache", lambda: self._guarded(
            "cache", lambda: CACHES[self.settings.cache_backend](self.settings, self.clock), shared=False))

    @property
    def tasks(self) -> TaskQueue:
        """The task queue chosen by ``TASKS_BACKEND`` (the local one is given by the emulator)."""
        return self._built("tasks", lambda: self._guarded(
            "tasks", lambda: TASK_QUEUES[self.settings.tasks_backend](self.settings, self.clock)))

    @property
    def breakers(self) -> BreakerRegistry:
        """The circuit breakers of this instance's dependencies (BREAKER_FAILURE_THRESHOLD, BREAKER_RESET_SECONDS)."""
        from common.breakers import registry_for

        # Shared with the Postgres engines, which find it from the same settings.
        return registry_for(self.settings)

    @property
    def rate_limiter(self) -> RateLimiter:
        """Per-tenant request budgets (``RATE_LIMITS``), kept where the cache is."""
        from common.ratelimit import limiter_for

        return self._built("rate_limiter", lambda: limiter_for(self.settings))

    @property
    def encryptor(self) -> Encryptor:
        """The encryptor of secrets at rest (``ENCRYPTION_KEYS``); asking for it without keys is a 500."""
        from common.crypto import Encryptor

        return self._built("encryptor", lambda: Encryptor(self.settings.encryption_keys))

    @property
    def llm(self) -> LlmClient:
        """The model client: retries, fallbacks, and every user endpoint checked against LLM_ALLOWED_HOSTS."""
        def make() -> LlmClient:
            from common.hosts import HostPolicy
            from common.llm.client import LlmClient

            return LlmClient(clock=self.clock, timeout_seconds=self.settings.llm_timeout_seconds,
                             max_retries=self.settings.llm_max_retries,
                             max_reply_bytes=self.settings.llm_max_reply_bytes,
                             vet_host=HostPolicy.from_settings(self.settings, "LLM_ALLOWED_HOSTS").vetted_addresses,
                             breakers=self.breakers)

        return self._built("llm", make)

    @property
    def prompts(self) -> PromptCatalog:
        """The shipped prompts, with the admins' stored overrides on top."""
        def make() -> PromptCatalog:
            from common.prompts.loader import FilePromptCatalog
            from common.prompts.overrides import OverridingCatalog

            return OverridingCatalog(FilePromptCatalog(), self.metadata, clock=self.clock,
                                     ttl_seconds=self.settings.prompt_cache_ttl_seconds)

        return self._built("prompts", make)

    @property
    def charts(self) -> ChartStore:
        """Stored charts, with URLs signed by URL_SIGNING_SECRET (or the bucket's own V4 URLs on GCS)."""
        def make() -> ChartStore:
            from common.charts import build_chart_store

            return build_chart_store(self.settings, self.blobs, self.metadata, self.clock)

        return self._built("charts", make)

    def override(self, name: str, part: Any) -> None:
        """Put ``part`` in place of one of ``PARTS`` from now on (tests: a backend that is down)."""
        if name not in PARTS:
            raise TypeError(f"not a part of the context: {name}")
        with self._lock:
            self.__dict__[name] = part

    def close(self) -> None:
        """Stop what this context started (the local task dispatcher's threads)."""
        tasks = self.__dict__.get("tasks")
        if tasks is not None and hasattr(tasks, "close"):
            tasks.close()

    def backends(self) -> dict[str, Callable[[], Any]]:
        """Name -> accessor of each configured backend that ``READINESS_CHECKS`` names, for readiness checks.

        Only those: in the cloud each function's service account reaches only its own backends, and probing
        another one would report "not ready" for a lack of permission, not of service.
        """
        checks = {
            f"storage:{self.settings.storage_backend}": lambda: self.blobs,
            f"metadata:{self.settings.metadata_backend}": lambda: self.metadata,
            f"cache:{self.settings.cache_backend}": lambda: self.cache,
        }
        # A local queue exists only inside the emulator; elsewhere there is none to check.
        if self.settings.tasks_backend != "local" or "tasks" in self._given:
            checks[f"tasks:{self.settings.tasks_backend}"] = lambda: self.tasks
        return {name: backend for name, backend in checks.items()
                if name.partition(":")[0] in self.settings.readiness_checks}


# The parts a caller (a test, the emulator) may hand to ``build`` instead of having them built.
PARTS = ("blobs", "metadata", "cache", "tasks", "rate_limiter", "encryptor", "llm", "prompts", "charts")


_current: Context | None = None
_current_lock = threading.Lock()


def context() -> Context:
    """Return this instance's context, building it from the environment on first call."""
    global _current
    if _current is None:
        with _current_lock:
            if _current is None:
                _current = build(Settings.from_env())
    return _current


def build(settings: Settings, *, clock: Clock | None = None, **parts: Any) -> Context:
    """Build a context from settings, with optional ready-made parts (a clock, and any of ``PARTS``)."""
    from common import logs, scratch

    logs.configure(settings.log_level, settings.log_format, settings.gcp_project)
    scratch.sweep()  # what a killed process of this instance left in the temporary folder
    # Polars reads its thread count from the environment when its pool starts (first use, lazily).
    os.environ["POLARS_MAX_THREADS"] = str(settings.polars_max_threads)
    if settings.auth_mode == "dev":
        log.warning("AUTH_MODE=dev: callers are trusted to say who they are (X-User-Id). Never use in the cloud.")
    return Context(settings, clock=clock, **parts)


def use(ctx: Context | None) -> None:
    """Install ``ctx`` as this instance's context (tests, the local emulator); None resets it."""
    global _current
    with _current_lock:
        _current = ctx
