"""Reading a streamed reply within its budgets: pieces, bytes of text, seconds, and the caller's cancel.

``LlmClient.complete`` streams when given a sink (a ``TextSink``): each attempt asks for a stream
(``stream_options.include_usage``, dropped for providers that do not know it) and passes every piece of text to
``sink.write`` as it arrives; the reply's text is the successful attempt's pieces joined. The client's retries,
fallbacks and accounting hold per attempt as for a call that does not stream:
- an attempt that wrote and then failed is recorded like any failed attempt; when another attempt follows
  (a retry or a fallback), ``sink.restart()`` is called before it writes, so the sink can drop the void text;
- ``cancelled()`` is also checked while the text arrives (when a piece arrives, at most every
  ``CANCEL_CHECK_SECONDS``): a cancel closes the stream and raises ``Cancelled``, the attempt recorded as failed
  (``cancelled``). A stream that sends nothing is not checked until its next piece or its read timeout;
- the stream is read inside the call's endpoint pin and reply budget, so both hold for every byte of it; and
  since LiteLLM keeps every piece (a parsed object of a few KB each) until the stream ends, an attempt also
  fails with MODEL_REPLY_TOO_LARGE past ``max_stream_chunks`` pieces or ``max_reply_bytes`` of text (UTF-8);
- the read timeout bounds each read only, so a stream that drips a piece every few seconds could hold the
  call (and its thread) for hours within those caps: an attempt fails as a ``timeout`` (``StreamTooSlow``,
  retried like any timeout) when a piece arrives more than ``max_stream_seconds`` after its request. A stream
  therefore ends at most one read timeout past that bound;
- the usage is the one the provider sends with the last piece, else LiteLLM's count of the prompt and the
  text; the cost is priced from those counts (``cost_known`` False for a model LiteLLM has no price for).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from common.clock import Clock
from common.llm import runtime

# Pieces of one streamed reply: a model sends about a token per piece, so this allows replies of ~8k tokens.
MAX_STREAM_CHUNKS = 8192
CANCEL_CHECK_SECONDS = 0.5  # how often, at most, a running stream asks whether its query was cancelled
_CANCEL_CHECK = dt.timedelta(seconds=CANCEL_CHECK_SECONDS)


class TextSink(Protocol):
    """Where a streamed reply's text goes while the model writes it.

    Within one call, the pieces written since the last ``restart`` (or since the start) are the reply's text.
    """

    def write(self, text: str) -> None:
        """Take the next piece of the reply, as the model writes it."""

    def restart(self) -> None:
        """Drop the pieces written so far: they are void, and another attempt starts over."""


class StreamStopped(Exception):
    """The client itself stopped a stream: too long (``reply_too_large``), too slow (``timeout``) or cancelled."""

    def __init__(self, kind: str, error_class: str):
        super().__init__(f"{error_class} ({kind})")
        self.kind = kind
        self.error_class = error_class


@dataclasses.dataclass(frozen=True)
class Streamed:
    """A streamed reply read to its end: the text and what it cost."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    cost_known: bool


class RestartingSink:
    """The caller's sink, told to restart before an attempt that follows one that wrote."""

    def __init__(self, sink: TextSink):
        self._sink = sink
        self._written = False

    def begin_attempt(self) -> None:
        """Start an attempt: restart the caller's sink if the attempt before this one wrote to it."""
        if self._written:
            self._sink.restart()
            self._written = False

    def write(self, text: str) -> None:
        """Pass a piece on to the caller's sink."""
        self._written = True
        self._sink.write(text)


@dataclasses.dataclass(frozen=True)
class StreamBudget:
    """How much of one streamed attempt is read: pieces, bytes of text (UTF-8), and seconds since its request."""

    max_chunks: int
    max_text_bytes: int
    max_seconds: float


def read_stream(stream: Iterable[Any], *, model: str, messages: list[dict[str, Any]], sink: RestartingSink,
                budget: StreamBudget, clock: Clock, requested_at: dt.datetime,
                cancelled: Callable[[], bool] | None = None) -> Streamed:
    """Read ``stream`` to its end within ``budget``, passing its text to ``sink``; close it in any case.

    Raise ``StreamStopped`` when a budget runs out or ``cancelled()`` says so; ``requested_at`` is when the
    attempt's request was made, on ``clock``.
    """
    pieces: list[str] = []
    chunks = text_bytes = 0
    usage = None
    max_duration = dt.timedelta(seconds=budget.max_seconds)
    last_check = clock.now()
    try:
        for chunk in stream:
            chunks += 1
            if chunks > budget.max_chunks:
                raise StreamStopped("reply_too_large", "TooManyStreamChunks")
            now = clock.now()
            if cancelled is not None and now - last_check >= _CANCEL_CHECK:
                last_check = now
                if cancelled():
                    raise StreamStopped("cancelled", "Cancelled")
            if now - requested_at > max_duration:
                raise StreamStopped("timeout", "StreamTooSlow")
            if getattr(chunk, "usage", None) is not None:  # the last piece's, when the provider sends it
                usage = chunk.usage
            text = _delta_text(chunk)
            if text:
                text_bytes += len(text.encode())
                if text_bytes > budget.max_text_bytes:
                    raise StreamStopped("reply_too_large", "ModelReplyTooLarge")
                pieces.append(text)
                sink.write(text)
    finally:
        close = getattr(stream, "close", None)
        if callable(close):
            close()  # a stream left early drops its connection instead of reading on
    return _accounted(model, messages, "".join(pieces), usage)


def _accounted(model: str, messages: list[dict[str, Any]], text: str, usage: Any) -> Streamed:
    """The reply with its tokens and cost: the provider's usage, else LiteLLM's count as an estimate."""
    if usage is None:
        prompt_tokens = runtime.count_tokens(model, messages)
        completion_tokens = runtime.count_text_tokens(model, text)
    else:
        prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
    cost, known = runtime.cost_of_tokens(model, prompt_tokens, completion_tokens)
    return Streamed(text, prompt_tokens, completion_tokens, cost, known)


def _delta_text(chunk: Any) -> str:
    choices = getattr(chunk, "choices", None) or []
    delta = getattr(choices[0], "delta", None) if choices else None
    return getattr(delta, "content", None) or ""
