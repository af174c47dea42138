"""A model endpoint (a test double) on loopback that answers with as many bytes as a test asks for.

It speaks the OpenAI protocol a user's ``api_base`` would: ``POST <base>/audio/transcriptions``, and
``POST <base>/chat/completions`` (a JSON completion, or server-sent events when the request asks for
``stream``), which is also the answer to any other path (another provider's protocol: only the size matters).
What it says is scripted by ``server.answer``:

    server.answer = Answer(content_bytes=200 * MiB)              # a valid reply whose text is 200 MB
    server.answer = Answer(content_bytes=200 * MiB, gzip=True)   # the same, gzip-compressed (~200 KB on the wire)
    server.answer = Answer(endless=True)                         # a chunked body that does not end
    server.answer = Answer(content_bytes=200 * MiB, chunked=False)  # announced by Content-Length instead
    server.answer = Answer(content_bytes=3000, event_chars=10, event_interval_s=0.1)  # a stream that drips for 30 s

The body is generated as it is written, so the server's own memory stays flat whatever the size, and a
client that hangs up simply ends the answer. "Endless" stops after ``ENDLESS_SAFETY_BYTES`` all the same, so
that a client without a budget (the code before it had one) fails a test instead of taking the machine.
Every request's path is recorded in ``server.requests``.
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import threading
import time
import zlib
from collections.abc import Callable, Iterator

MiB = 1024 * 1024
ENDLESS_SAFETY_BYTES = 256 * MiB
_BLOCK = 64 * 1024


@dataclasses.dataclass(frozen=True)
class Answer:
    """What the next replies look like; ``content_bytes`` is the length of the model's text."""

    content_bytes: int = 16
    endless: bool = False
    gzip: bool = False
    chunked: bool = True  # else the length is announced up front (never for an endless or gzip body)
    keep_alive: bool = False  # leave the connection open for the client's next request
    event_chars: int = 4096  # characters of text per server-sent event, when streaming
    event_interval_s: float = 0.0  # the pause before each server-sent event of text (a model that drips)


class ModelReplyServer:
    """Answers chat completions and transcriptions at ``url`` (give it as ``api_base``)."""

    def __init__(self) -> None:
        self.answer = Answer()
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_port}/v1"

    def requests_to(self, suffix: str) -> int:
        """How many requests reached a path ending with ``suffix``."""
        with self._lock:
            return sum(path.endswith(suffix) for path in self.requests)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - the http.server hook's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with server._lock:
                    server.requests.append(self.path)
                answer = server.answer
                if self.path.endswith("/audio/transcriptions"):
                    parts, kind = _transcription, "application/json"
                elif b'"stream":true' in body.replace(b" ", b""):
                    parts, kind = _events, "text/event-stream"
                else:  # a chat completion, or whatever another provider's path asks: the size is the point
                    parts, kind = _completion, "application/json"
                try:
                    self._send(parts, kind, answer)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading: that is what a bounded client does

            def _send(self, parts: Callable[[Answer], Iterator[bytes]], kind: str, answer: Answer) -> None:
                chunked = answer.chunked or answer.endless or answer.gzip
                self.send_response(200)
                self.send_header("Content-Type", kind)
                if answer.gzip:
                    self.send_header("Content-Encoding", "gzip")
                if chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                else:  # generated twice: once to count it, so that nothing is held
                    self.send_header("Content-Length", str(sum(len(part) for part in parts(answer))))
                if not answer.keep_alive:
                    self.send_header("Connection", "close")
                self.end_headers()
                for part in _gzipped(parts(answer)) if answer.gzip else parts(answer):
                    if part:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
                if chunked:
                    self.wfile.write(b"0\r\n\r\n")

            def log_message(self, *args: object) -> None:
                pass

        return Handler


def _text(answer: Answer) -> Iterator[bytes]:
    """The model's text: ``content_bytes`` letters, or ``ENDLESS_SAFETY_BYTES`` of them."""
    block = b"a" * _BLOCK
    remaining = ENDLESS_SAFETY_BYTES if answer.endless else answer.content_bytes
    while remaining > 0:
        size = min(_BLOCK, remaining)
        remaining -= size
        yield block[:size]


def _completion(answer: Answer) -> Iterator[bytes]:
    head = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "endless"}
    yield json.dumps(head)[:-1].encode() + b', "choices": [{"index": 0, "finish_reason": "stop", ' \
                                           b'"message": {"role": "assistant", "content": "'
    yield from _text(answer)
    yield b'"}}], "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}}'


def _events(answer: Answer) -> Iterator[bytes]:
    def event(delta: dict, finish: str | None = None) -> bytes:
        chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "endless",
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return b"data: " + json.dumps(chunk).encode() + b"\n\n"

    yield event({"role": "assistant", "content": ""})
    sent, number, total = 0, 0, ENDLESS_SAFETY_BYTES if answer.endless else answer.content_bytes
    while sent < total:
        size = min(answer.event_chars, total - sent)
        if answer.event_interval_s:
            time.sleep(answer.event_interval_s)
        # Numbered, so no two events repeat (LiteLLM stops a stream that repeats one chunk too often).
        yield event({"content": (f"{number:09d} " * (size // 10 + 1))[:size]})
        sent, number = sent + size, number + 1
    yield event({}, "stop")
    yield b"data: [DONE]\n\n"


def _transcription(answer: Answer) -> Iterator[bytes]:
    yield b'{"text": "'
    yield from _text(answer)
    yield b'"}'


def _gzipped(parts: Iterator[bytes]) -> Iterator[bytes]:
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    for part in parts:
        yield compressor.compress(part)
    yield compressor.flush()
