"""A scripted speech-to-text server (a test double) on loopback, speaking the OpenAI transcription protocol.

LiteLLM's custom-provider hook has no transcription call, so speech goes over real HTTP, as it would to Groq,
OpenAI or a local Whisper server: the real ``litellm.transcription`` path (multipart encoding, the provider's
client, exception mapping) ends here, where a script decides the answer:

    server.queue(429, 200)          # statuses of the next answers; 200 answers with ``server.text``
    server.text = "total revenue per region"

Every request is recorded with its headers, form fields and file, so tests can assert what reached the
provider and that bad input never did.
"""

from __future__ import annotations

import collections
import dataclasses
import email.parser
import email.policy
import http.server
import json
import threading


@dataclasses.dataclass(frozen=True)
class Received:
    path: str
    authorization: str
    fields: dict[str, str]
    filename: str
    file: bytes


class TranscriptionServer:
    """Answers POST <base>/audio/transcriptions; ``url`` is the base to give as ``api_base``."""

    def __init__(self) -> None:
        self.text = "berapa total revenue per region"
        self.requests: list[Received] = []
        self._statuses: collections.deque[int] = collections.deque()
        self._lock = threading.Lock()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_port}/v1"

    def queue(self, *statuses: int) -> None:
        with self._lock:
            self._statuses.extend(statuses)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next_status(self) -> int:
        with self._lock:
            return self._statuses.popleft() if self._statuses else 200

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server hook's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                fields, filename, file = _multipart(self.headers.get("Content-Type", ""), body)
                with server._lock:
                    server.requests.append(Received(self.path, self.headers.get("Authorization", ""), fields,
                                                    filename, file))
                status = server._next_status()
                if not self.path.endswith("/audio/transcriptions"):
                    status = 404
                answer = {"text": server.text} if status == 200 else {
                    "error": {"message": f"scripted status {status}", "type": "scripted", "code": status}}
                encoded = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(encoded)))
                self.end_headers()
                self.wfile.write(encoded)

            def log_message(self, *args: object) -> None:
                pass

        return Handler


def _multipart(content_type: str, body: bytes) -> tuple[dict[str, str], str, bytes]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    fields, filename, file = {}, "", b""
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if part.get_filename():
            filename, file = part.get_filename(), part.get_payload(decode=True)
        else:
            fields[name] = part.get_payload(decode=True).decode()
    return fields, filename, file
