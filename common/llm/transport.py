"""The HTTP transport under every model call: a reply is read only up to LLM_MAX_REPLY_BYTES.

LiteLLM, and the OpenAI SDK it drives, read a whole response body into memory before parsing it, so an
endpoint a user points the service at (``api_base``) could answer with gigabytes, or a chunked body that
never ends, and take the instance's memory with one question. Here bytes are counted where they are read:
an httpx transport wraps each response's stream and raises ``ModelReplyTooLarge`` as soon as the body passes
the budget, on the wire and, for a compressed body, once inflated too (a 200 KB gzip body can be 200 MB of
text). Only gzip and deflate are offered, and inflated in bounded pieces; another encoding is refused.

LiteLLM takes an httpx client or transport from the application at two points, and ``install`` sets both
to this transport: ``litellm.client_session``, a public setting, is the http client of every OpenAI SDK
client it builds (the ``openai/`` and OpenAI-compatible chat and transcription paths: groq, mistral,
deepseek, together_ai, xai, hosted_vllm..., and Azure); ``litellm.sync_transport``, which
``HTTPHandler.create_client`` reads (with getattr: it is not declared, so it is the more fragile of the two),
is the transport of every ``HTTPHandler`` it builds (anthropic, gemini, ollama, openrouter..., and
``module_level_client``). ``litellm.force_ipv4`` would replace the latter; nothing here sets it. Async calls
(``acompletion``: aiohttp) are not covered; the service makes none. The budget is the calling thread's
(``bounded_replies``), captured when the request is sent, so a stream read later, or in another thread,
keeps the budget of the call that opened it.

One transport serves every client LiteLLM builds, so it keeps two connection pools: connections opened for
an endpoint checked against LLM_ALLOWED_HOSTS (their names were vetted when they connected) are never
reused by or for an unchecked call, and the reverse: a user's endpoint that redirects to the operator's own
(private) endpoint finds no open connection there to ride on.

This module imports httpx; only ``runtime.load_litellm`` and code running after it import it.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import http.cookiejar
import threading
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

import httpx

DEFAULT_MAX_REPLY_BYTES = 4 * 1024 * 1024
_OFFERED_ENCODINGS = "gzip, deflate"
_INFLATED_PIECE_BYTES = 64 * 1024  # what one compressed chunk may turn into before it is counted


class ModelReplyTooLarge(Exception):
    """A model endpoint's reply passed the budget (or came in an encoding that cannot be read within it)."""

    def __init__(self, limit: int, reason: str = ""):
        super().__init__(f"the model endpoint's reply was larger than {limit} bytes (LLM_MAX_REPLY_BYTES)"
                         + (f": {reason}" if reason else ""))
        self.limit = limit


@dataclasses.dataclass(frozen=True)
class _Budget:
    max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES
    vetted: bool = False  # the call's endpoint (and every host it reaches) is held to LLM_ALLOWED_HOSTS


_OUTSIDE_CALLS = _Budget()  # a request LiteLLM makes outside ``bounded_replies``: the default budget
_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("model_reply_budget", default=None)
_INSTALL_LOCK = threading.Lock()


@contextlib.contextmanager
def bounded_replies(max_reply_bytes: int, *, vetted: bool) -> Iterator[None]:
    """While inside, every model reply this thread asks for is read up to ``max_reply_bytes``."""
    token = _BUDGET.set(_Budget(max_reply_bytes, vetted))
    try:
        yield
    finally:
        _BUDGET.reset(token)


def oversized_reply_in(exc: BaseException) -> ModelReplyTooLarge | None:
    """The ``ModelReplyTooLarge`` behind ``exc``, however LiteLLM or the OpenAI SDK wrapped it, if any."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        if isinstance(current, ModelReplyTooLarge):
            return current
        seen.add(id(current))
        linked = (current.__cause__, current.__context__, getattr(current, "original_exception", None))
        pending += [other for other in linked if isinstance(other, BaseException)]
    return None


def install(litellm: Any) -> None:
    """Make every synchronous httpx client LiteLLM builds read replies through ``BoundedTransport``, once."""
    with _INSTALL_LOCK:
        if not isinstance(getattr(litellm, "sync_transport", None), BoundedTransport):
            _install(litellm)


def _install(litellm: Any) -> None:
    transport = BoundedTransport()
    litellm.sync_transport = transport
    # Shared by every tenant: a cookie one endpoint sets must never be replayed to another (LiteLLM's own
    # HTTPHandler clients refuse cookies the same way). Redirects are followed as LiteLLM's default client does.
    no_cookies = http.cookiejar.CookieJar(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=()))
    litellm.client_session = httpx.Client(transport=transport, follow_redirects=True, cookies=no_cookies)
    # Clients built before this point (none, when load_litellm is the first to import LiteLLM) would keep
    # their unbounded transports for as long as they stay cached.
    litellm.in_memory_llm_clients_cache.flush_cache()


class BoundedTransport(httpx.BaseTransport):
    """Sends a request on the pool its call may use and returns a response whose body is read within budget."""

    def __init__(self) -> None:
        self._pools = {True: httpx.HTTPTransport(), False: httpx.HTTPTransport()}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        budget = _BUDGET.get() or _OUTSIDE_CALLS
        request.headers["Accept-Encoding"] = _OFFERED_ENCODINGS  # httpx would offer br/zstd when installed
        response = self._pools[budget.vetted].handle_request(request)
        try:
            return _bounded(response, budget.max_reply_bytes)
        except BaseException:
            response.close()
            raise

    def close(self) -> None:
        """Keep the pools open: every client LiteLLM builds shares them, and it closes a client it evicts."""


def _bounded(response: httpx.Response, limit: int) -> httpx.Response:
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", "x-gzip", "deflate"):
        raise ModelReplyTooLarge(limit, f"it came in an encoding that was not offered ({encoding[:40]})")
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ModelReplyTooLarge(limit, f"it announced {declared} bytes")
    headers = response.headers
    inflate = encoding != "identity"
    if inflate:  # inflated here, within the budget, so httpx must not inflate it again
        headers = httpx.Headers([(name, value) for name, value in headers.multi_items()
                                 if name.lower() not in ("content-encoding", "content-length")])
    return httpx.Response(response.status_code, headers=headers, extensions=response.extensions,
                          stream=_BoundedStream(response.stream, limit, inflate))


class _BoundedStream(httpx.SyncByteStream):
    """A response body that raises ``ModelReplyTooLarge`` once it has received, or inflated, ``limit`` bytes."""

    def __init__(self, stream: Any, limit: int, inflate: bool):
        self._stream = stream
        self._limit = limit
        # Header auto-detection: gzip, or zlib-wrapped deflate (what HTTP's "deflate" means).
        self._inflater = zlib.decompressobj(zlib.MAX_WBITS | 32) if inflate else None

    def __iter__(self) -> Iterator[bytes]:
        received = produced = 0
        for chunk in self._stream:
            received += len(chunk)
            self._check(received)
            for piece in self._inflated(chunk) if self._inflater else (chunk,):
                produced += len(piece)
                self._check(produced)
                yield piece
        if self._inflater and (rest := self._inflater.flush()):  # what the last input left pending (< 1 KB)
            self._check(produced + len(rest))
            yield rest

    def close(self) -> None:
        if hasattr(self._stream, "close"):
            self._stream.close()

    def _check(self, size: int) -> None:
        if size > self._limit:
            self.close()  # the connection is dropped, not read to its end
            raise ModelReplyTooLarge(self._limit)

    def _inflated(self, chunk: bytes) -> Iterable[bytes]:
        assert self._inflater is not None
        while chunk and not self._inflater.eof:
            try:
                piece = self._inflater.decompress(chunk, _INFLATED_PIECE_BYTES)
            except zlib.error as exc:
                raise httpx.DecodingError(f"the compressed reply does not inflate: {exc}") from None
            chunk = self._inflater.unconsumed_tail
            if piece:
                yield piece
