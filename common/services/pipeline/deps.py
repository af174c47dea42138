"""What every pipeline stage needs, built once per instance from the composition root."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

from common.auth import Tenant
from common.clock import Clock
from common.config import Settings
from common.services.datasets import DatasetStore


@dataclasses.dataclass
class PipelineDeps:
    settings: Settings
    clock: Clock
    metadata: Any
    blobs: Any
    tasks_of: Callable[[], Any]  # the task queue, built on first use (a function serving reads needs none)
    cache: Any  # common.cache.Cache: answers already given
    llm: Any  # common.llm.LlmClient
    prompts: Any  # common.prompts.PromptCatalog
    charts: Any  # common.charts.ChartStore

    @property
    def tasks(self) -> Any:
        """The queue the stages are enqueued on."""
        return self.tasks_of()

    @property
    def datasets(self) -> DatasetStore:
        return DatasetStore(blobs=self.blobs, metadata=self.metadata, settings=self.settings, clock=self.clock)

    @functools.cached_property
    def encryptor(self) -> Any:
        """The encryptor of request API keys held while a question runs (needs ENCRYPTION_KEYS)."""
        from common.crypto import Encryptor

        return Encryptor(self.settings.encryption_keys)

    def result_key(self, tenant: Tenant, query_id: str) -> str:
        """Where a question's result table is kept."""
        return f"tenants/{tenant.namespace}/queries/{query_id}/result.json"


def from_context(ctx: Any) -> PipelineDeps:
    """Build the pipeline's dependencies from a bootstrap ``Context``."""
    from common.charts import build_chart_store
    from common.hosts import HostPolicy
    from common.llm import LlmClient
    from common.prompts import FilePromptCatalog
    from common.prompts.overrides import OverridingCatalog

    settings = ctx.settings
    llm = LlmClient(clock=ctx.clock, timeout_seconds=settings.llm_timeout_seconds,
                    max_retries=settings.llm_max_retries,
                    vet_host=HostPolicy.from_settings(settings, "LLM_ALLOWED_HOSTS").vetted_addresses)
    charts = build_chart_store(settings, ctx.blobs, ctx.metadata, ctx.clock)
    prompts = OverridingCatalog(FilePromptCatalog(), ctx.metadata, clock=ctx.clock,
                                ttl_seconds=settings.prompt_cache_ttl_seconds)
    return PipelineDeps(settings=settings, clock=ctx.clock, metadata=ctx.metadata, blobs=ctx.blobs,
                        tasks_of=lambda: ctx.tasks, cache=ctx.cache, llm=llm, prompts=prompts, charts=charts)
