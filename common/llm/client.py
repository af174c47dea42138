"""LLM calls: one request's key and model per call, retries with backoff, fallbacks, and an account of each call.

Every call passes its key and endpoint to ``litellm.completion`` as arguments; nothing is set on LiteLLM's
module globals or in ``os.environ``, so concurrent questions of two tenants never share a key or a model
(the original set one process-global PandasAI LLM, LEGACY_API.md §6 D4). The instance holds only its
immutable settings and is shared by every thread.

Behaviour of ``complete``:
- each model gets ``1 + max_retries`` attempts; rate limits (429), server errors (5xx), timeouts and
  connection errors are retried after an exponential backoff with jitter; auth errors (401/403) and bad
  requests (other 4xx) fail at once, without fallbacks (another model would not fix the key or the request);
- when the primary model's attempts run out, each fallback model is tried in order. A fallback of the same
  provider uses the primary's credentials; one of another provider uses ``credentials_for(model_id)``, and
  is skipped (with the reason recorded) when no ``credentials_for`` was given or it raises: a key is never
  sent to another provider (the original's compiler did, D7);
- ``cancelled()`` is checked before every attempt, so a cancel stops before the next paid call;
- every attempt, failed or not, and every skipped fallback becomes a ``CallRecord`` (model, tokens, cost,
  latency), on the reply or on the raised error's ``attempts``, so a query can account for all of them.

Every reply is read up to ``max_reply_bytes`` (LLM_MAX_REPLY_BYTES, ``transport``): a longer one fails that
call with MODEL_REPLY_TOO_LARGE at once, without retries or fallbacks (another attempt would read as much
again), and is recorded like any other failed attempt.

Streaming (with a ``sink``) keeps all of the above per attempt, within a stream's own budgets: see ``streaming``.

With ``breakers``, each deployment (model id and endpoint) has a circuit breaker: its server errors, timeouts
and refused connections count (not a 429, a refused key or a bad request: the deployment answered those). While
it is open, no attempt is made: the model is skipped (recorded as such) for the next fallback, or, with none
left to answer, the call fails at once with ``DependencyUnavailable`` (503 with Retry-After). Retries stop too
when the breaker opens between two attempts. After BREAKER_RESET_SECONDS one call probes the deployment again.

``transcribe`` turns speech into text the same way: per-call credentials, the same retries and errors (one
model, no fallbacks: a voice question is re-recorded, not re-routed).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
import urllib.parse
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import tenacity

from common.breakers import names
from common.breakers.failures import MODEL_OUTAGE_KINDS
from common.clock import Clock, SystemClock
from common.errors import AppError, Conflict, DependencyUnavailable, UpstreamError
from common.hosts import pinned_resolution
from common.llm import runtime
from common.llm.keys import Credentials
from common.llm.models import provider_of
from common.llm.streaming import (
    MAX_STREAM_CHUNKS,
    RestartingSink,
    StreamBudget,
    Streamed,
    StreamStopped,
    TextSink,
    read_stream,
)

if TYPE_CHECKING:
    from common.breakers import BreakerRegistry, Guard

log = logging.getLogger("convoinsight.llm")

# Arguments the client owns: a caller's params may not replace the key, endpoint, model or retry policy.
_RESERVED_PARAMS = frozenset({"model", "messages", "api_key", "api_base", "base_url", "timeout", "num_retries",
                              "max_retries", "fallbacks", "stream", "stream_options", "mock_response"})
# LiteLLM falls back to provider environment variables (OPENAI_API_KEY...) when api_key is None; a keyless
# call to a local endpoint must not pick up a server key that way, so it sends this non-secret placeholder.
NO_KEY = "no-key"
_CODES = {"rate_limit": "LLM_RATE_LIMITED", "server_error": "LLM_UNAVAILABLE", "connection": "LLM_UNAVAILABLE",
          "timeout": "LLM_TIMEOUT", "auth": "LLM_AUTH", "bad_request": "LLM_BAD_REQUEST",
          "reply_too_large": "MODEL_REPLY_TOO_LARGE"}
DEFAULT_MAX_REPLY_BYTES = 4 * 1024 * 1024  # LLM_MAX_REPLY_BYTES' default (common.llm.transport has the same)


@dataclasses.dataclass(frozen=True)
class CallRecord:
    """One attempt (or one skipped fallback): what it cost and how it ended."""

    model: str
    ok: bool
    error_kind: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cost_known: bool = False
    latency_ms: float = 0.0
    detail: str = ""  # the provider's error class, or why a fallback was skipped; never the provider's text


@dataclasses.dataclass(frozen=True)
class LlmReply:
    """The answer, with the tokens and cost of the call that gave it, and every attempt on the way."""

    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    cost_known: bool
    latency_ms: float  # of the answering call; each attempt's own latency is on its record
    attempts: tuple[CallRecord, ...]


@dataclasses.dataclass(frozen=True)
class Transcript:
    """Speech turned into text, with the call that did it."""

    text: str
    model: str
    call: CallRecord


class Cancelled(Conflict):
    """The query was cancelled before an LLM call or while one streamed; ``attempts`` lists the calls made."""

    code = "CANCELLED"

    def __init__(self, message: str = "the query was cancelled", *, attempts: Sequence[CallRecord] = ()):
        super().__init__(message)
        self.attempts = tuple(attempts)


class LlmFailed(UpstreamError):
    """Every model failed, or one failed in a way retries cannot fix; ``attempts`` lists every call."""

    def __init__(self, message: str, *, code: str, attempts: Sequence[CallRecord]):
        summary = [{"model": r.model, "error": r.error_kind, "detail": r.detail} for r in attempts if not r.ok]
        super().__init__(message, code=code, details={"attempts": summary})
        self.attempts = tuple(attempts)


class _AttemptFailed(Exception):
    """One attempt's provider error, already recorded, with the kind that decides whether to retry."""

    def __init__(self, kind: str, error_class: str):
        super().__init__(f"{error_class} ({kind})")
        self.kind = kind
        self.error_class = error_class


class _BreakerOpen(_AttemptFailed):
    """The deployment's breaker is open: no attempt was made; ``error`` is what to raise if no model answers."""

    def __init__(self, error: DependencyUnavailable):
        super().__init__("breaker_open", "CircuitOpen")
        self.error = error


class LlmClient:
    """Calls models through LiteLLM with per-call credentials, bounded retries and fallbacks."""

    def __init__(self, *, clock: Clock | None = None, sleep: Callable[[float], None] = time.sleep,
                 timeout_seconds: float = 60.0, max_retries: int = 2, backoff_base_seconds: float = 1.0,
                 backoff_max_seconds: float = 20.0, vet_host: Callable[[str], list[str]] | None = None,
                 max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES, max_stream_chunks: int = MAX_STREAM_CHUNKS,
                 max_stream_seconds: float | None = None, breakers: BreakerRegistry | None = None):
        # A streamed attempt's whole duration, from its request; the read timeout bounds each read only.
        max_stream_seconds = 4 * timeout_seconds if max_stream_seconds is None else max_stream_seconds
        if min(timeout_seconds, max_reply_bytes, max_stream_chunks, max_stream_seconds) <= 0:
            raise ValueError("the timeouts and the reply budgets must be positive")
        if max_retries < 0 or backoff_base_seconds < 0 or backoff_max_seconds < 0:
            raise ValueError("retries and backoff must not be negative")
        self._clock = clock or SystemClock()
        self._sleep = sleep
        self._timeout = timeout_seconds
        self._max_retries = max_retries
        self._backoff_base = backoff_base_seconds
        self._backoff_max = backoff_max_seconds
        # LLM_ALLOWED_HOSTS' check of a user's endpoint (HostPolicy.vetted_addresses): the addresses it allows.
        self._vet_host = vet_host
        self._max_reply_bytes = max_reply_bytes
        self._breakers = breakers
        self._stream_budget = StreamBudget(max_chunks=max_stream_chunks, max_text_bytes=max_reply_bytes,
                                           max_seconds=max_stream_seconds)

    def one_shot(self, *, timeout_seconds: float) -> LlmClient:
        """A client like this one that tries once, within ``timeout_seconds`` at most (checking a key)."""
        timeout = min(self._timeout, timeout_seconds)
        return LlmClient(clock=self._clock, sleep=self._sleep, timeout_seconds=timeout, max_retries=0,
                         vet_host=self._vet_host, max_reply_bytes=self._max_reply_bytes,
                         max_stream_chunks=self._stream_budget.max_chunks,
                         max_stream_seconds=min(self._stream_budget.max_seconds, timeout), breakers=self._breakers)

    def complete(self, messages: list[dict[str, Any]], *, model_id: str, credentials: Credentials,
                 params: dict[str, Any] | None = None, fallback_models: Sequence[str] = (),
                 response_format_json: bool = False, cancelled: Callable[[], bool] | None = None,
                 credentials_for: Callable[[str], Credentials] | None = None,
                 sink: TextSink | None = None) -> LlmReply:
        """Answer ``messages`` with ``model_id``, retrying and then falling back; raise LlmFailed or Cancelled.

        With ``sink``, the reply is streamed: its text goes to ``sink.write`` as the model writes it.
        """
        call_params = _call_params(params, response_format_json)
        models = [model_id, *fallback_models]
        for model in models:
            provider_of(model)  # a malformed id is a 400 before any call is paid for
        records: list[CallRecord] = []
        restarting = RestartingSink(sink) if sink is not None else None
        if restarting is not None:
            call_params.update(stream=True, stream_options={"include_usage": True})
        call = self._completion_call(messages, call_params, restarting, cancelled)
        unavailable: DependencyUnavailable | None = None
        for model in models:
            model_credentials = self._credentials(model, model_id, credentials, credentials_for, records)
            if model_credentials is None:
                continue
            try:
                response, record = self._with_retries(call, model, model_credentials, cancelled, records)
            except _BreakerOpen as refused:
                unavailable = unavailable or refused.error
                continue
            except _AttemptFailed as failure:
                if failure.kind not in runtime.TRANSIENT_KINDS:
                    raise _final_error(model, model_credentials, failure, records) from None
                continue
            return LlmReply(text=_text_of(response), model=model, prompt_tokens=record.prompt_tokens,
                            completion_tokens=record.completion_tokens, cost_usd=record.cost_usd,
                            cost_known=record.cost_known, latency_ms=record.latency_ms, attempts=tuple(records))
        if unavailable is not None and not any(r.error_kind in runtime.TRANSIENT_KINDS for r in records):
            raise unavailable  # no deployment was even tried: the first open breaker says when to come back
        raise _exhausted(model_id, records)

    def _completion_call(self, messages: list[dict[str, Any]], call_params: dict[str, Any],
                         sink: RestartingSink | None,
                         cancelled: Callable[[], bool] | None) -> Callable[[Any, str, Credentials], Any]:
        """One attempt's provider call for ``complete``: the reply, or with a sink its stream read to the end."""
        def call(litellm: Any, model: str, credentials: Credentials) -> Any:
            if sink is not None:
                sink.begin_attempt()
            requested_at = self._clock.now()
            response = litellm.completion(model=model, messages=messages, api_key=credentials.api_key or NO_KEY,
                                          api_base=credentials.api_base, timeout=self._timeout, num_retries=0,
                                          drop_params=True, **call_params)
            if sink is None:
                return response
            return read_stream(response, model=model, messages=messages, sink=sink, budget=self._stream_budget,
                               clock=self._clock, requested_at=requested_at, cancelled=cancelled)

        return call

    def transcribe(self, audio: bytes, *, filename: str, content_type: str, model_id: str,
                   credentials: Credentials, language: str | None = None,
                   prompt: str | None = None) -> Transcript:
        """Turn speech into text with ``model_id`` (a Whisper-style model), with the same retries as ``complete``."""
        provider_of(model_id)
        records: list[CallRecord] = []

        def call(litellm: Any, model: str, credentials: Credentials) -> Any:
            return litellm.transcription(model=model, file=(filename, audio, content_type), language=language,
                                         prompt=prompt, api_key=credentials.api_key or NO_KEY,
                                         api_base=credentials.api_base, timeout=self._timeout, max_retries=0)

        try:
            response, record = self._with_retries(call, model_id, credentials, None, records)
        except _BreakerOpen as refused:
            if any(r.error_kind in runtime.TRANSIENT_KINDS for r in records):
                raise _exhausted(model_id, records) from None  # it opened between two attempts of this call
            raise refused.error from None
        except _AttemptFailed as failure:
            if failure.kind not in runtime.TRANSIENT_KINDS:
                raise _final_error(model_id, credentials, failure, records) from None
            raise _exhausted(model_id, records) from None
        return Transcript(text=(getattr(response, "text", None) or "").strip(), model=model_id, call=record)

    def _credentials(self, model: str, primary: str, credentials: Credentials,
                     credentials_for: Callable[[str], Credentials] | None,
                     records: list[CallRecord]) -> Credentials | None:
        if provider_of(model) == provider_of(primary):
            return credentials
        if credentials_for is None:
            records.append(CallRecord(model, ok=False, error_kind="skipped",
                                      detail=f"another provider than {provider_of(primary)}; no credentials given"))
            return None
        try:
            return credentials_for(model)
        except AppError as exc:
            records.append(CallRecord(model, ok=False, error_kind="skipped", detail=exc.message))
            return None

    def _with_retries(self, call: Callable[[Any, str, Credentials], Any], model: str, credentials: Credentials,
                      cancelled: Callable[[], bool] | None, records: list[CallRecord]) -> tuple[Any, CallRecord]:
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self._max_retries + 1),
            # Full exponential growth plus up to one base of jitter, so retries of many instances spread out.
            wait=tenacity.wait_exponential_jitter(multiplier=self._backoff_base, max=self._backoff_max,
                                                  jitter=self._backoff_base),
            retry=tenacity.retry_if_exception(
                lambda exc: isinstance(exc, _AttemptFailed) and exc.kind in runtime.TRANSIENT_KINDS),
            sleep=self._sleep,
            reraise=True,
        )
        return retrying(self._attempt, call, model, credentials, cancelled, records)

    def _attempt(self, call: Callable[[Any, str, Credentials], Any], model: str, credentials: Credentials,
                 cancelled: Callable[[], bool] | None, records: list[CallRecord]) -> tuple[Any, CallRecord]:
        """Make one provider call through ``call`` and record it, whatever happens."""
        if cancelled is not None and cancelled():
            raise Cancelled(attempts=records)
        guard = self._breaker_of(model, credentials)
        if guard is not None:
            try:
                guard.check()
            except DependencyUnavailable as refused:
                records.append(CallRecord(model, ok=False, error_kind="skipped",
                                          detail=f"circuit breaker open for {guard.name}"))
                raise _BreakerOpen(refused) from None
        litellm = runtime.load_litellm()
        from common.llm import transport  # loaded with LiteLLM, above

        pin = self._pinned_endpoint(credentials)  # before the clock: a refused host is no attempt
        budget = transport.bounded_replies(self._max_reply_bytes, vetted=self._vetted(credentials))
        started = self._clock.now()
        try:
            with pin, budget:
                response = call(litellm, model, credentials)
        except Exception as exc:
            latency = self._elapsed_ms(started)
            if isinstance(exc, StreamStopped):
                kind, error_class = exc.kind, exc.error_class
            else:
                kind = runtime.error_kind(exc)
                # The wrapper LiteLLM put around a cut-off reply (APIConnectionError...) would mislead: name the cause.
                error_class = (transport.ModelReplyTooLarge.__name__ if kind == "reply_too_large"
                               else type(exc).__name__)
            records.append(CallRecord(model, ok=False, error_kind=kind or "error", latency_ms=latency,
                                      detail=error_class))
            _judge(guard, kind)
            if kind is None:
                raise
            if kind == "cancelled":
                raise Cancelled(attempts=records) from None
            log.warning("LLM call to %s failed: %s (%s)", model, error_class, kind)
            raise _AttemptFailed(kind, error_class) from None
        record = _success_record(model, response, self._elapsed_ms(started))
        records.append(record)
        if guard is not None:
            guard.succeeded()
        return response, record

    def _breaker_of(self, model: str, credentials: Credentials) -> Guard | None:
        """The breaker of the deployment this attempt goes to (None without ``breakers``)."""
        if self._breakers is None:
            return None
        return self._breakers.guard(names.model_deployment(model, credentials.api_base, credentials.breaker_scope))

    def _pinned_endpoint(self, credentials: Credentials) -> contextlib.AbstractContextManager:
        """Check a user's endpoint against LLM_ALLOWED_HOSTS now, and keep the call on the addresses checked.

        LiteLLM resolves the name again when it connects; without the pin, a DNS answer that changed since the
        check (rebinding) would send the call into the service's own network. Any other host the call reaches
        meanwhile (a redirect's target: the HTTP clients follow them) is held to the same policy.
        """
        if not self._vetted(credentials):
            return contextlib.nullcontext()
        assert self._vet_host is not None and credentials.api_base is not None
        host = urllib.parse.urlsplit(credentials.api_base).hostname or ""
        return pinned_resolution(host, self._vet_host(host), vet_others=self._vet_host)

    def _vetted(self, credentials: Credentials) -> bool:
        """Whether the call goes to a user's endpoint, held to LLM_ALLOWED_HOSTS (with every host it reaches)."""
        host = urllib.parse.urlsplit(credentials.api_base).hostname if credentials.api_base else None
        return bool(credentials.user_api_base and host and self._vet_host)

    def _elapsed_ms(self, started: Any) -> float:
        return (self._clock.now() - started).total_seconds() * 1000.0


def _judge(guard: Guard | None, kind: str | None) -> None:
    """Tell the deployment's breaker how a failed attempt went: an outage, or an answer (a refusal is one)."""
    if guard is None:
        return
    if kind in MODEL_OUTAGE_KINDS:
        guard.failed()
    elif kind in ("auth", "bad_request"):
        guard.succeeded()
    # A 429, a cancel, a reply over the budget: neither says whether the deployment is up.


def _call_params(params: dict[str, Any] | None, response_format_json: bool) -> dict[str, Any]:
    params = dict(params or {})
    reserved = _RESERVED_PARAMS.intersection(params)
    if reserved:
        raise ValueError(f"params may not set {sorted(reserved)}: the client owns them")
    if response_format_json:
        params["response_format"] = {"type": "json_object"}
    return params


def _success_record(model: str, response: Any, latency_ms: float) -> CallRecord:
    if isinstance(response, Streamed):
        return CallRecord(model, ok=True, prompt_tokens=response.prompt_tokens,
                          completion_tokens=response.completion_tokens, cost_usd=response.cost_usd,
                          cost_known=response.cost_known, latency_ms=latency_ms)
    usage = getattr(response, "usage", None)
    cost, known = runtime.cost_of(response, model)
    return CallRecord(model, ok=True, prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                      completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0), cost_usd=cost,
                      cost_known=known, latency_ms=latency_ms)


def _text_of(response: Any) -> str:
    if isinstance(response, Streamed):
        return response.text
    choices = getattr(response, "choices", None) or []
    message = getattr(choices[0], "message", None) if choices else None
    return getattr(message, "content", None) or ""


def _final_error(model: str, credentials: Credentials, failure: _AttemptFailed,
                 records: list[CallRecord]) -> LlmFailed:
    if failure.kind == "auth":
        message = (f"the provider refused the API key for {model} ({failure.error_class}); "
                   f"the key came from: {credentials.source}")
    elif failure.error_class == "TooManyStreamChunks":
        message = f"{model} streamed its reply in more pieces than the client reads; the call was stopped there"
    elif failure.kind == "reply_too_large":
        message = f"{model} answered with more bytes than LLM_MAX_REPLY_BYTES allows; the call was stopped there"
    else:
        message = f"{model} refused the request ({failure.error_class})"
    return LlmFailed(message, code=_CODES[failure.kind], attempts=records)


def _exhausted(primary: str, records: list[CallRecord]) -> LlmFailed:
    # The primary model is always tried, so there is a transient failure to report.
    last = next(r for r in reversed(records) if r.error_kind in runtime.TRANSIENT_KINDS)
    counts: dict[tuple[str, str], int] = {}
    for record in records:
        if not record.ok:
            counts[record.model, record.detail] = counts.get((record.model, record.detail), 0) + 1
    tried = "; ".join(f"{model}: {n} x {detail}" if n > 1 else f"{model}: {detail}"
                      for (model, detail), n in counts.items())
    return LlmFailed(f"{primary} failed after retries and fallbacks, last with {last.detail} ({tried})",
                     code=_CODES[last.error_kind], attempts=records)
