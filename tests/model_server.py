"""A test double of a model provider: an OpenAI-compatible chat-completions endpoint on loopback.

It tells the agent of each call by its system prompt's first line ("You are the Planner of ConvoInsight"), asks
its ``answer`` function for the reply's text, and sends it after a fixed model latency: a plain reply once
``latency_s`` has passed; a streamed one (``"stream": true``) as OpenAI streams it, one chunk a word, the first
after ``first_piece_s`` (the time to first token) and the rest spread evenly so the stream ends at
``latency_s``, then a chunk with the usage. Every call is recorded with when it arrived and when its reply
ended. It serves 127.0.0.1 only.

It also lists its models, as a key check asks (``GET <base>/models``, and OpenRouter's ``GET <base>/key``):
``listing`` in OpenAI's shape, to a key in ``accepted_keys`` (any key when that is None) sent as a bearer
token or in Anthropic's ``x-api-key`` or Gemini's ``x-goog-api-key`` header; another key gets a 401. Each
listing request is recorded in ``listings`` with the key it carried.
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import re
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

# The agents of the pipeline (planner ... analyst) and of the one before it (router ... compiler, commit d51b459).
ROLES = {"Planner": "planner", "Router": "router", "Orchestrator": "orchestrator",
         "Data Manipulator": "manipulator", "Data Visualizer": "visualizer", "Data Analyzer": "analyzer",
         "Analyst": "analyst", "Response Compiler": "compiler", "Document Analyst": "text_answer",
         "Question Suggester": "suggest"}
_ROLE = re.compile(r"You are the ([A-Za-z ]+?) of ConvoInsight")
USAGE = {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
# What an OpenAI-compatible server lists: chat models, and an embedding model a chat page must not offer.
DEFAULT_LISTING = ({"id": "llama3.1:8b", "object": "model", "owned_by": "library"},
                   {"id": "meta-llama/Llama-3.1-8B-Instruct", "object": "model", "owned_by": "vllm"},
                   {"id": "nomic-embed-text", "object": "model", "owned_by": "library"})
_KEY_HEADERS = ("x-api-key", "x-goog-api-key")


class Listing(NamedTuple):
    path: str
    key: str | None  # the key the request carried, however it was sent


class ModelCall(NamedTuple):
    tag: str  # what the answer function said the call was about (the eval harness: its case id)
    agent: str
    arrived: float  # time.time() when the request arrived
    ended: float  # time.time() when the reply's last byte was sent


@dataclasses.dataclass(frozen=True)
class Reply:
    text: str
    tag: str = ""
    latency_s: float | None = None  # this call's model latency, instead of the server's


Answer = Callable[[str, list[dict[str, Any]]], Reply]  # (agent, messages) -> the reply


def agent_of(messages: list[dict[str, Any]]) -> str:
    """The agent whose system prompt opens ``messages`` ("unknown" when none of ours)."""
    match = _ROLE.search(str(messages[0].get("content", ""))) if messages else None
    return ROLES.get(match.group(1), "unknown") if match else "unknown"


def user_text(messages: list[dict[str, Any]]) -> str:
    """The first user message (a retry's correction comes later)."""
    return next((str(message["content"]) for message in messages if message.get("role") == "user"), "")


class ModelServer:
    """The endpoint (``url`` is its OpenAI base URL); ``calls`` lists what it answered; a context manager."""

    def __init__(self, answer: Answer, *, latency_s: float = 0.0, first_piece_s: float | None = None,
                 listing: tuple[dict[str, Any], ...] = DEFAULT_LISTING, accepted_keys: set[str] | None = None):
        self.answer = answer
        self.latency_s = latency_s
        self.first_piece_s = first_piece_s  # None: every piece at the end of the latency
        self.listing = listing
        self.accepted_keys = accepted_keys
        self.listings: list[Listing] = []
        self.calls: list[ModelCall] = []
        self.lock = threading.Lock()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1"

    def __enter__(self) -> ModelServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def calls_since(self, moment: float) -> list[ModelCall]:
        """The calls that arrived at or after ``moment`` (time.time())."""
        with self.lock:
            return [call for call in self.calls if call.arrived >= moment]

    def schedule(self, text: str, latency_s: float) -> list[tuple[float, str]]:
        """When, in seconds after the request arrived, each word of a streamed reply is sent."""
        words = re.findall(r"\S+\s*", text) or [text]
        first = latency_s if self.first_piece_s is None else min(self.first_piece_s, latency_s)
        if len(words) == 1:
            return [(latency_s, words[0])]
        step = (latency_s - first) / (len(words) - 1)
        return [(first + step * n, word) for n, word in enumerate(words)]

    def _record(self, call: ModelCall) -> None:
        with self.lock:
            self.calls.append(call)


def _handler(model: ModelServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server hook's name
            arrived = time.time()
            request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            agent = agent_of(request["messages"])
            reply = model.answer(agent, request["messages"])
            latency = model.latency_s if reply.latency_s is None else reply.latency_s
            head = {"id": "chatcmpl-scripted", "created": int(arrived), "model": request["model"]}
            if request.get("stream"):
                self._stream(head, model.schedule(reply.text, latency), arrived)
            else:
                _sleep_until(arrived + latency)
                self._reply(head, reply.text)
            model._record(ModelCall(reply.tag, agent, arrived, time.time()))

        def do_GET(self) -> None:  # noqa: N802 - the http.server hook's name
            bearer = self.headers.get("Authorization", "")
            key = bearer.removeprefix("Bearer ") if bearer.startswith("Bearer ") else \
                next((self.headers[name] for name in _KEY_HEADERS if self.headers.get(name)), None)
            with model.lock:
                model.listings.append(Listing(self.path, key))
            if not self.path.endswith(("/models", "/key")):
                self._json(404, {"error": {"message": "no such path"}})
            elif model.accepted_keys is not None and key not in model.accepted_keys:
                self._json(401, {"error": {"message": "Incorrect API key provided", "code": "invalid_api_key"}})
            else:
                self._json(200, {"object": "list", "data": list(model.listing)})

        def _json(self, status: int, payload: dict[str, Any]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _reply(self, head: dict[str, Any], text: str) -> None:
            body = json.dumps({**head, "object": "chat.completion", "usage": USAGE, "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _stream(self, head: dict[str, Any], pieces: list[tuple[float, str]], arrived: float) -> None:
            """The reply as OpenAI streams it: a chunk a word, at its time, then one with the usage."""
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            head = {**head, "object": "chat.completion.chunk"}
            for at, word in pieces:
                _sleep_until(arrived + at)
                chunk = {**head, "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            end = {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": USAGE}
            self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
            self.close_connection = True

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


def _sleep_until(moment: float) -> None:
    remaining = moment - time.time()
    if remaining > 0:
        time.sleep(remaining)
