"""The LLM layer: model ids, per-call credentials, and a LiteLLM client with retries, fallbacks and accounting.

Importing this package does not import LiteLLM (seconds of cold start); the first call or token count does.
"""

from common.llm.client import CallRecord, Cancelled, LlmClient, LlmFailed, LlmReply, Transcript
from common.llm.keys import Credentials, StoredKey, resolve_credentials
from common.llm.models import compose_model_id, provider_of
from common.llm.runtime import count_tokens
from common.llm.streaming import TextSink

__all__ = ["CallRecord", "Cancelled", "Credentials", "LlmClient", "LlmFailed", "LlmReply", "StoredKey",
           "TextSink", "compose_model_id", "count_tokens", "provider_of", "resolve_credentials",
           "Transcript"]
