"""The one place that imports LiteLLM: lazily, offline, and with its answers turned into plain values.

LiteLLM takes seconds to import (~3-6 s on a 2-core instance), so no module imports it at load time; only
the first LLM call or token count of a process pays for it. Python's import lock makes that first import
safe when several threads arrive at once, and ``sys.modules`` is the only cache, so there is no global here.
"""

from __future__ import annotations

import logging
import os
from types import ModuleType
from typing import Any, Literal

log = logging.getLogger("convoinsight.llm")

ErrorKind = Literal["rate_limit", "server_error", "timeout", "connection", "auth", "bad_request",
                    "reply_too_large", "skipped", "cancelled"]
# A reply past LLM_MAX_REPLY_BYTES is not among them: asking again would only read as many bytes again.
TRANSIENT_KINDS: frozenset[str] = frozenset({"rate_limit", "server_error", "timeout", "connection"})


def load_litellm() -> ModuleType:
    """Import LiteLLM, making sure it never reaches the internet on its own."""
    # Without the first variable, `import litellm` fetches the model price list from GitHub (a cold start
    # that stalls where DNS hangs, and prices that change under a running instance); its bundled copy is used
    # instead. The second stops `token_counter` downloading HuggingFace tokenizers for Llama-family models
    # (measured here: 23 s of retries before it falls back to the bundled tiktoken encodings anyway).
    # Both are read by LiteLLM itself, which is why they go through os.environ, and only when unset.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
    import litellm

    from common.llm import transport

    # Before any client exists: every reply LiteLLM reads, on any path, is read within LLM_MAX_REPLY_BYTES.
    transport.install(litellm)
    # LiteLLM prints "Give Feedback / Provider List" banners to stdout on every provider error; the errors
    # themselves are logged by the caller. This is output only, the same for every tenant.
    litellm.suppress_debug_info = True
    # Its INFO lines repeat every call's model and provider; our own accounting records each call already.
    logging.getLogger("LiteLLM").setLevel(logging.WARNING)
    # Without this, every piece of a streamed reply runs LiteLLM's success callbacks (none are registered here)
    # in a new event loop on its logging threads: measured here, 60% of the CPU of reading a 4,000-piece stream.
    # The stream's end is still logged once, as for a call that does not stream.
    litellm.disable_streaming_logging = True
    return litellm


def count_tokens(model_id: str, messages: list[dict[str, Any]]) -> int:
    """Count the prompt tokens of ``messages`` for ``model_id`` with LiteLLM's bundled tokenizers."""
    litellm = load_litellm()
    try:
        return int(litellm.token_counter(model=model_id, messages=messages))
    except Exception as exc:  # noqa: BLE001 - a count is an estimate; it must never fail a question
        # Content LiteLLM cannot tokenise (an unknown part type): about four characters per token.
        log.warning("token count failed for %s (%s); estimating from characters", model_id, type(exc).__name__)
        return max(1, sum(len(str(message.get("content", ""))) for message in messages) // 4)


def count_text_tokens(model_id: str, text: str) -> int:
    """Count the tokens of ``text`` (a reply) for ``model_id`` with LiteLLM's bundled tokenizers."""
    litellm = load_litellm()
    try:
        return int(litellm.token_counter(model=model_id, text=text))
    except Exception as exc:  # noqa: BLE001 - as in count_tokens: an estimate never fails a question
        log.warning("token count failed for %s (%s); estimating from characters", model_id, type(exc).__name__)
        return len(text) // 4


def cost_of_tokens(model_id: str, prompt_tokens: int, completion_tokens: int) -> tuple[float, bool]:
    """Return (cost in USD, whether LiteLLM's price map knows the model) for a call of these token counts."""
    litellm = load_litellm()
    try:
        prompt_cost, completion_cost = litellm.cost_per_token(model=model_id, prompt_tokens=prompt_tokens,
                                                              completion_tokens=completion_tokens)
    except Exception:  # noqa: BLE001 - as in cost_of: an unpriced model costs nothing we can know
        return 0.0, False
    return float(prompt_cost) + float(completion_cost), True


def cost_of(response: Any, model_id: str) -> tuple[float, bool]:
    """Return (cost in USD, whether LiteLLM's price map knows the model) for one completion response."""
    litellm = load_litellm()
    try:
        return float(litellm.completion_cost(completion_response=response, model=model_id)), True
    except Exception:  # noqa: BLE001 - an unpriced model (a local vLLM) costs nothing we can know
        return 0.0, False


def error_kind(exc: BaseException) -> ErrorKind | None:
    """Classify a provider error; ``None`` means it is not one (a bug: let it propagate).

    LiteLLM maps completion errors to its own exception types, but its transcription path lets the OpenAI
    client's errors through unmapped (LiteLLM's own exceptions subclass those too), so both are read here.
    A reply cut off at LLM_MAX_REPLY_BYTES reaches the caller wrapped in whatever the path in between made of
    it (an APIConnectionError, a streaming error), so the cause is looked for first.
    """
    litellm = load_litellm()
    import openai

    from common.llm import transport

    if transport.oversized_reply_in(exc) is not None:
        return "reply_too_large"
    if not isinstance(exc, (*litellm.LITELLM_EXCEPTION_TYPES, openai.APIError)):
        return None
    if isinstance(exc, (litellm.Timeout, openai.APITimeoutError)):
        return "timeout"
    status = getattr(exc, "status_code", None)
    if isinstance(exc, (litellm.APIConnectionError, openai.APIConnectionError)) and status in (None, 500):
        return "connection"
    if status == 429:
        return "rate_limit"
    if status in (401, 403):
        return "auth"
    if status == 408:
        return "timeout"
    if isinstance(status, int) and status >= 500:
        return "server_error"
    return "bad_request"
