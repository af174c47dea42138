"""What a service needs from the composition root, named by the ports it uses.

``bootstrap.Context`` has every port; a service types its first parameter with the narrowest of these
bundles that covers what it touches, so its signature says which ports it reaches and a test may pass any
object that has them. They are structural (``Protocol``): nothing here is built or imported at run time.

- ``Clocked``: settings and the clock (every service has these).
- ``DataPorts``: + blob and metadata stores (datasets, domain SQL, sessions, cleanup).
- ``SecretPorts``: + metadata and the encryptor (saved Postgres connections, saved LLM keys).
- ``QuestionPorts``: all of them, with the cache, task queue, model client, prompts and charts (the pipeline).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from common.cache import Cache
    from common.charts.store import ChartStore
    from common.clock import Clock
    from common.config import Settings
    from common.crypto import Encryptor
    from common.llm.client import LlmClient
    from common.metadata import MetadataStore
    from common.prompts.loader import PromptCatalog
    from common.storage import BlobStore
    from common.tasks import TaskQueue


class Clocked(Protocol):
    @property
    def settings(self) -> Settings: ...

    @property
    def clock(self) -> Clock: ...


class DataPorts(Clocked, Protocol):
    @property
    def blobs(self) -> BlobStore: ...

    @property
    def metadata(self) -> MetadataStore: ...


class SecretPorts(Clocked, Protocol):
    @property
    def metadata(self) -> MetadataStore: ...

    @property
    def encryptor(self) -> Encryptor: ...


class QuestionPorts(DataPorts, SecretPorts, Protocol):
    @property
    def cache(self) -> Cache: ...

    @property
    def tasks(self) -> TaskQueue: ...

    @property
    def llm(self) -> LlmClient: ...

    @property
    def prompts(self) -> PromptCatalog: ...

    @property
    def charts(self) -> ChartStore: ...
