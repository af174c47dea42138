"""A scripted LLM provider (a test double), registered with LiteLLM as the CustomLLM provider ``scripted``.

Calls to ``scripted/<name>`` (and ``scripted_alt/<name>``, a second provider) go through the real
``litellm.completion`` path (parameter handling, exception mapping, usage, cost) and end here, where a
script decides the answer:

    script = install_scripted_llm()
    script.reset()
    script.queue("scripted/primary", Fault("rate_limit"), Reply('{"sql": "SELECT 1"}', prompt_tokens=30))
    script.respond("scripted/fallback", lambda call: Reply(f"echo {call.messages[-1]['content']}"))

A call takes the next step queued for its model, else for ``"*"``, else asks its model's responder, else ``"*"``'s;
a call with no step fails as a bad request (not retried) and is listed in ``script.unscripted``.
Every call is recorded (model, messages, api_key, api_base, params, whether it streamed), under a lock, so tests
can assert which key reached which call when many threads call at once.

Streamed calls (``litellm.completion(..., stream=True)``) play the same steps. A ``Reply`` arrives in pieces of
``WORDS_PER_CHUNK`` words (whitespace kept, so the pieces join back to ``text``): ``delay_s`` sleeps before the
first piece, ``chunk_delay_s`` between pieces, and the last piece carries the reply's usage (unless
``stream_usage=False``: a provider that reports none, whose tokens LiteLLM then counts itself when the caller
asked for usage). A ``Fault`` is raised when the call is made, before any piece, as for a call that does not
stream; ``Fault(kind, after_text="partial")`` instead streams ``after_text`` first and fails mid-stream (a call
that does not stream fails at once, as if the reply had been cut off before it was read). LiteLLM hands a
mid-stream fault on wrapped in a ``MidStreamFallbackError`` (a 503 that keeps the fault's status), except a 4xx
other than 429, which it raises as it is:

    script.queue("scripted/primary", Fault("server_error", after_text="The total is"), Reply("The total is 42."))
"""

from __future__ import annotations

import collections
import dataclasses
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")

import litellm  # noqa: E402 - after the offline switches above
from litellm.types.llms.openai import ChatCompletionUsageBlock  # noqa: E402
from litellm.types.utils import GenericStreamingChunk, Usage  # noqa: E402

PROVIDER = "scripted"
# A second provider, for fallbacks that cross providers (and so need their own credentials).
OTHER_PROVIDER = "scripted_alt"
# Priced models, so cost accounting runs on LiteLLM's own price map; "scripted/unpriced" stays unknown.
PRICED_MODELS = ("scripted/primary", "scripted/fallback", "scripted/model", "scripted_alt/model")
INPUT_COST_PER_TOKEN = 1e-6
OUTPUT_COST_PER_TOKEN = 2e-6
WORDS_PER_CHUNK = 3  # the words in one streamed piece

FaultKind = Literal["rate_limit", "server_error", "internal_error", "timeout", "auth", "bad_request", "connection"]


@dataclasses.dataclass(frozen=True)
class Reply:
    """A text answer with the usage the provider reports; ``delay_s`` and ``chunk_delay_s`` really sleep."""

    text: str
    prompt_tokens: int = 10
    completion_tokens: int = 5
    delay_s: float = 0.0
    chunk_delay_s: float = 0.0  # streamed: the pause between two pieces, so text is seen arriving
    stream_usage: bool = True  # streamed: whether the last piece carries the usage


@dataclasses.dataclass(frozen=True)
class Fault:
    """A provider failure, raised as the LiteLLM exception a real provider's would map to.

    With ``after_text``, a streamed call first sends that text (in pieces, as a ``Reply``) and then fails.
    """

    kind: FaultKind
    message: str = "scripted fault"
    after_text: str | None = None


def malformed_json() -> Reply:
    """Return a reply that claims to be JSON but does not parse."""
    return Reply('{"answer": 42, "rows": [1, 2')


def wrong_sql() -> Reply:
    """Return a reply with SQL naming a table and a column that do not exist."""
    return Reply('{"sql": "SELECT no_such_column FROM no_such_table"}')


Step = Reply | Fault


@dataclasses.dataclass(frozen=True)
class Call:
    """One call as the provider received it."""

    model: str
    messages: list[dict[str, Any]]
    api_key: str | None
    api_base: str | None
    params: dict[str, Any]
    timeout: float | None
    stream: bool = False


class Script:
    """Queues and responders per model, and the record of every call; safe under concurrent calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget every step, responder and recorded call."""
        with self._lock:
            self._queues: dict[str, collections.deque[Step]] = collections.defaultdict(collections.deque)
            self._responders: dict[str, Callable[[Call], Step]] = {}
            self._calls: list[Call] = []
            self._unscripted: list[Call] = []

    def queue(self, model: str, *steps: Step) -> Script:
        """Append steps for ``model`` (a full id such as ``scripted/primary``, or ``"*"`` for any model)."""
        with self._lock:
            self._queues[model].extend(steps)
        return self

    def respond(self, model: str, responder: Callable[[Call], Step]) -> Script:
        """Answer ``model``'s calls with ``responder(call)`` once its queue is empty."""
        with self._lock:
            self._responders[model] = responder
        return self

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    @property
    def unscripted(self) -> list[Call]:
        with self._lock:
            return list(self._unscripted)

    def calls_for(self, model: str) -> list[Call]:
        """Return the calls made to ``model``, in order."""
        return [call for call in self.calls if call.model == model]

    def next_step(self, call: Call) -> Step | None:
        """Record ``call`` and pick its step."""
        with self._lock:
            self._calls.append(call)
            for key in (call.model, "*"):
                if self._queues[key]:
                    return self._queues[key].popleft()
            responder = self._responders.get(call.model) or self._responders.get("*")
            if responder is None:
                self._unscripted.append(call)
                return None
        return responder(call)  # outside the lock: a responder may be slow or call back into the script


class ScriptedLLM(litellm.CustomLLM):
    """The LiteLLM provider that plays a ``Script``."""

    def __init__(self, script: Script, provider: str):
        super().__init__()
        self.script = script
        self.provider = provider

    def completion(self, model: str, messages: list, api_base: str, model_response: Any, api_key: Any = None,
                   optional_params: dict | None = None, timeout: Any = None, **_: Any) -> Any:
        step = self._step(model, messages, api_base, api_key, optional_params, timeout, stream=False)
        if isinstance(step, Fault):
            raise _exception(step, model, self.provider)
        if step.delay_s:
            time.sleep(step.delay_s)
        model_response.choices[0].message.content = step.text
        model_response.usage = Usage(prompt_tokens=step.prompt_tokens, completion_tokens=step.completion_tokens,
                                     total_tokens=step.prompt_tokens + step.completion_tokens)
        model_response.model = model
        return model_response

    def streaming(self, model: str, messages: list, api_base: str, api_key: Any = None,
                  optional_params: dict | None = None, timeout: Any = None,
                  **_: Any) -> Iterator[GenericStreamingChunk]:
        # Not a generator itself: the call is recorded, and a plain Fault raised, when LiteLLM makes the call.
        step = self._step(model, messages, api_base, api_key, optional_params, timeout, stream=True)
        if isinstance(step, Fault) and step.after_text is None:
            raise _exception(step, model, self.provider)
        return self._pieces(step, model)

    def _step(self, model: str, messages: list, api_base: str, api_key: Any, optional_params: dict | None,
              timeout: Any, *, stream: bool) -> Step:
        full_id = f"{self.provider}/{model}"
        call = Call(full_id, messages, api_key, api_base, dict(optional_params or {}),
                    None if timeout is None else float(timeout), stream)
        step = self.script.next_step(call)
        if step is None:
            raise litellm.BadRequestError(f"no scripted step for {full_id}", model=model, llm_provider=self.provider)
        return step

    def _pieces(self, step: Step, model: str) -> Iterator[GenericStreamingChunk]:
        text = (step.after_text or "") if isinstance(step, Fault) else step.text
        pieces = pieces_of(text)
        if isinstance(step, Reply) and step.delay_s:
            time.sleep(step.delay_s)
        for number, piece in enumerate(pieces):
            if number and isinstance(step, Reply) and step.chunk_delay_s:
                time.sleep(step.chunk_delay_s)
            yield GenericStreamingChunk(text=piece, is_finished=False, finish_reason="", usage=None, index=0)
        if isinstance(step, Fault):
            raise _exception(step, model, self.provider)
        usage = ChatCompletionUsageBlock(prompt_tokens=step.prompt_tokens, completion_tokens=step.completion_tokens,
                                         total_tokens=step.prompt_tokens + step.completion_tokens)
        yield GenericStreamingChunk(text="", is_finished=True, finish_reason="stop", index=0,
                                    usage=usage if step.stream_usage else None)


def pieces_of(text: str) -> list[str]:
    """Split ``text`` into the pieces a stream sends: ``WORDS_PER_CHUNK`` words each, whitespace kept."""
    words = re.findall(r"\s*\S+\s*|\s+", text)
    return ["".join(words[start:start + WORDS_PER_CHUNK]) for start in range(0, len(words), WORDS_PER_CHUNK)]


def _exception(fault: Fault, model: str, provider: str) -> Exception:
    factories: dict[str, Callable[[], Exception]] = {
        "rate_limit": lambda: litellm.RateLimitError(fault.message, llm_provider=provider, model=model),
        "server_error": lambda: litellm.ServiceUnavailableError(fault.message, llm_provider=provider, model=model),
        "internal_error": lambda: litellm.InternalServerError(fault.message, llm_provider=provider, model=model),
        "timeout": lambda: litellm.Timeout(fault.message, model=model, llm_provider=provider),
        "auth": lambda: litellm.AuthenticationError(fault.message, llm_provider=provider, model=model),
        "bad_request": lambda: litellm.BadRequestError(fault.message, model=model, llm_provider=provider),
        "connection": lambda: litellm.APIConnectionError(fault.message, llm_provider=provider, model=model),
    }
    return factories[fault.kind]()


_INSTALL_LOCK = threading.Lock()
_SCRIPT = Script()


def install_scripted_llm() -> Script:
    """Register the ``scripted`` provider and its prices with LiteLLM once per process; return the script."""
    with _INSTALL_LOCK:
        if not any(item["provider"] == PROVIDER for item in litellm.custom_provider_map):
            litellm.register_model({
                model: {"input_cost_per_token": INPUT_COST_PER_TOKEN, "output_cost_per_token": OUTPUT_COST_PER_TOKEN,
                        "cache_creation_input_token_cost": 0.0, "cache_read_input_token_cost": 0.0,
                        "litellm_provider": model.partition("/")[0], "mode": "chat"}
                for model in PRICED_MODELS})
            litellm.custom_provider_map = [*litellm.custom_provider_map, *(
                {"provider": provider, "custom_handler": ScriptedLLM(_SCRIPT, provider)}
                for provider in (PROVIDER, OTHER_PROVIDER))]
    return _SCRIPT
