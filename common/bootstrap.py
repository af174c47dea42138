"""The composition root: settings become concrete adapters here, lazily, once per instance.

Nothing connects at import time. A function asks ``context()`` for what it needs when a request needs it,
so the health function never builds a storage client and no cold start pays for an unused backend.
Tests build their own ``Context`` (``build(...)``) and install it with ``use(...)``.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from common.clock import Clock, SystemClock
from common.config import Settings
from common.errors import ConfigurationError

log = logging.getLogger("convoinsight.bootstrap")


def _local_blobs(settings: Settings) -> Any:
    from common.storage.local import LocalBlobStore

    return LocalBlobStore(os.path.join(settings.data_dir, "blobs"))


def _gcs_blobs(settings: Settings) -> Any:
    from common.storage.gcs import GcsBlobStore

    return GcsBlobStore(settings.gcs_bucket)


def _sql_metadata(settings: Settings, clock: Clock) -> Any:
    from common.metadata.sql import SqlMetadataStore
    from common.metadata.sql_engine import create_engine_for

    engine = create_engine_for(settings.database_url, cloud_sql_instance=settings.cloud_sql_instance,
                               data_dir=settings.data_dir)
    return SqlMetadataStore(engine, clock=clock, table_prefix=settings.collection_prefix)


def _firestore_metadata(settings: Settings, clock: Clock) -> Any:
    from google.cloud import firestore

    from common.metadata.firestore import FirestoreMetadataStore

    client = firestore.Client(project=settings.gcp_project or None, database=settings.firestore_database)
    return FirestoreMetadataStore(client, clock=clock, collection_prefix=settings.collection_prefix)


def _memory_cache(settings: Settings, clock: Clock) -> Any:
    from common.cache import MemoryCache

    return MemoryCache(clock=clock)


def _redis_cache(settings: Settings, clock: Clock) -> Any:
    from common.cache import RedisCache

    return RedisCache(settings.redis_url, prefix=settings.collection_prefix)


BLOB_STORES: dict[str, Callable[[Settings], Any]] = {"local": _local_blobs, "gcs": _gcs_blobs}
METADATA_STORES: dict[str, Callable[[Settings, Clock], Any]] = {
    "sql": _sql_metadata,
    "firestore": _firestore_metadata,
}
CACHES: dict[str, Callable[[Settings, Clock], Any]] = {"memory": _memory_cache, "redis": _redis_cache}


def _local_tasks(settings: Settings, clock: Clock) -> Any:
    # The local dispatcher calls the agents function in process, which only the emulator that loaded it can
    # reach; the emulator builds the queue and passes it in as the `tasks` part.
    raise ConfigurationError("TASKS_BACKEND=local: the local task queue is created by the local emulator "
                             "(python -m local_emulator) and passed to bootstrap.build(settings, tasks=...); "
                             "outside the emulator set TASKS_BACKEND=cloudtasks")


def _cloud_tasks(settings: Settings, clock: Clock) -> Any:
    from common.tasks.cloud import CloudTasksQueue

    _, project, _, location, _, queue = settings.tasks_queue.split("/")  # the shape Settings.validate checked
    return CloudTasksQueue(project, location, queue, settings.tasks_target_url, settings.tasks_service_account,
                           clock=clock)


TASK_QUEUES: dict[str, Callable[[Settings, Clock], Any]] = {"local": _local_tasks, "cloudtasks": _cloud_tasks}


class Context:
    """Everything a request may need, each part built on first use."""

    def __init__(self, settings: Settings, *, clock: Clock | None = None, blobs: Any = None, metadata: Any = None,
                 cache: Any = None, tasks: Any = None):
        self.settings = settings
        self.clock = clock or SystemClock()
        self._given = {"blobs": blobs, "metadata": metadata, "cache": cache, "tasks": tasks}
        self._lock = threading.Lock()

    @functools.cached_property
    def blobs(self) -> Any:
        """The blob store chosen by ``STORAGE_BACKEND``."""
        with self._lock:
            return self._given["blobs"] or BLOB_STORES[self.settings.storage_backend](self.settings)

    @functools.cached_property
    def metadata(self) -> Any:
        """The metadata store chosen by ``METADATA_BACKEND``."""
        with self._lock:
            return self._given["metadata"] or METADATA_STORES[self.settings.metadata_backend](
                self.settings, self.clock)

    @functools.cached_property
    def cache(self) -> Any:
        """The cache chosen by ``CACHE_BACKEND``."""
        with self._lock:
            return self._given["cache"] or CACHES[self.settings.cache_backend](self.settings, self.clock)

    @functools.cached_property
    def tasks(self) -> Any:
        """The task queue chosen by ``TASKS_BACKEND`` (the local one is given by the emulator)."""
        with self._lock:
            return self._given["tasks"] or TASK_QUEUES[self.settings.tasks_backend](self.settings, self.clock)

    @functools.cached_property
    def rate_limiter(self) -> Any:
        """Per-tenant request budgets (``RATE_LIMITS``), kept where the cache is."""
        from common.ratelimit import limiter_for

        return limiter_for(self.settings)

    def close(self) -> None:
        """Stop what this context started (the local task dispatcher's threads)."""
        tasks = self._given["tasks"] or self.__dict__.get("tasks")
        if tasks is not None and hasattr(tasks, "close"):
            tasks.close()

    def backends(self) -> dict[str, Callable[[], Any]]:
        """Name -> accessor of each configured backend, for readiness checks."""
        checks = {
            f"storage:{self.settings.storage_backend}": lambda: self.blobs,
            f"metadata:{self.settings.metadata_backend}": lambda: self.metadata,
            f"cache:{self.settings.cache_backend}": lambda: self.cache,
        }
        # A local queue exists only inside the emulator; elsewhere there is none to check.
        if self.settings.tasks_backend != "local" or self._given["tasks"] is not None:
            checks[f"tasks:{self.settings.tasks_backend}"] = lambda: self.tasks
        return checks


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


def build(settings: Settings, **parts: Any) -> Context:
    """Build a context from settings, with optional ready-made parts (clock, blobs, metadata, cache, tasks)."""
    from common import logs

    logs.configure(settings.log_level, settings.log_format, settings.gcp_project)
    # Polars reads its thread count from the environment when its pool starts (first use, lazily).
    os.environ["POLARS_MAX_THREADS"] = str(settings.polars_max_threads)
    if settings.auth_mode == "dev":
        log.warning("AUTH_MODE=dev: callers are trusted to say who they are (X-User-Id). Never use in the cloud.")
    return Context(settings, **parts)


def use(ctx: Context | None) -> None:
    """Install ``ctx`` as this instance's context (tests, the local emulator); None resets it."""
    global _current
    with _current_lock:
        _current = ctx
