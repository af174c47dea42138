"""The answer's text while the model writes it: appended to a list in the cache by the stage that calls the
model, read by the events stream of any instance.

The cache (Redis in production) carries the pieces because the writer (the agents function) and the reader
(the queries function) are different instances; a per-process cache only carries them when both run in one
process (the emulator). Streaming is a courtesy: when the cache fails, the pieces stop and the answer still
arrives whole with the job's end, so nothing here ever fails a question.

Each item is JSON: ``{"text": "..."}`` for new text, or ``{"restart": true}`` when a model call failed after it
had written and another attempt starts over (the text so far is void).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from common.auth import Tenant
from common.cache import Cache
from common.errors import AppError

log = logging.getLogger("convoinsight.pipeline")

TTL_SECONDS = 15 * 60  # longer than a question may run
FLUSH_SECONDS = 0.05  # pieces closer together than this travel as one item
MAX_ITEMS = 4096  # a bound on the list; past it, the rest arrives with the job's end


def stream_key(tenant: Tenant, query_id: str) -> str:
    return f"tenants/{tenant.namespace}/answer-stream/{query_id}"


class AnswerStream:
    """A ``TextSink`` for one question's answer (``LlmClient.complete(..., sink=)``)."""

    def __init__(self, cache: Cache, tenant: Tenant, query_id: str, *,
                 clock: Callable[[], float] = time.monotonic):
        self._cache = cache
        self._key = stream_key(tenant, query_id)
        self._clock = clock
        self._pending = ""
        self._last_flush = clock()
        self._items = 0
        self._broken = False

    def write(self, text: str) -> None:
        self._pending += text
        if self._clock() - self._last_flush >= FLUSH_SECONDS:
            self.flush()

    def restart(self) -> None:
        self._pending = ""
        self._append({"restart": True})

    def flush(self) -> None:
        """Send the text not sent yet (the stage calls this once the model has finished)."""
        if self._pending:
            text, self._pending = self._pending, ""
            self._append({"text": text})
        self._last_flush = self._clock()

    def _append(self, item: dict[str, Any]) -> None:
        if self._broken or self._items >= MAX_ITEMS:
            return
        try:
            self._items = self._cache.append(self._key, json.dumps(item, ensure_ascii=False).encode(), TTL_SECONDS)
        except AppError as exc:  # unavailable, or a wrong type: the answer still arrives with the job's end
            log.warning("answer streaming stopped: %s", exc.message)
            self._broken = True


def pieces(cache: Cache, tenant: Tenant, query_id: str, start: int) -> list[dict[str, Any]]:
    """The items written after the first ``start`` (none when the cache cannot say)."""
    try:
        raw = cache.items(stream_key(tenant, query_id), start)
    except AppError:
        return []
    return [json.loads(item) for item in raw]
