"""A model endpoint (a test double) on loopback whose models can be taken down and brought back.

OpenAI's chat-completions protocol (``POST <base>/chat/completions``, no streaming): a model named in ``down``
answers 503, a key not in ``accepted_keys`` (when set) gets a 401, any other call a short reply. Every request
is counted per model in ``requests``. It serves 127.0.0.1 only.

    with OutageModelServer() as server:
        server.down.add("primary")      # "openai/primary" at server.url now fails with 503
        server.down.clear()             # and is back
"""

from __future__ import annotations

import collections
import http.server
import json
import threading
import time
from typing import Any

USAGE = {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}


class OutageModelServer:
    """``down``: model names that answer 503; ``requests``: model name -> requests received."""

    def __init__(self, *, accepted_keys: set[str] | None = None):
        self.down: set[str] = set()
        self.accepted_keys = accepted_keys
        self.requests: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1"

    def __enter__(self) -> OutageModelServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler(model: OutageModelServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server hook's name
            request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            name = request.get("model", "")
            key = self.headers.get("Authorization", "").removeprefix("Bearer ")
            with model.lock:
                model.requests[name] += 1
                down = name in model.down
            if down:
                self._json(503, {"error": {"message": "the model is overloaded", "type": "server_error"}})
            elif model.accepted_keys is not None and key not in model.accepted_keys:
                self._json(401, {"error": {"message": "Incorrect API key provided", "code": "invalid_api_key"}})
            else:
                self._json(200, {"id": "chatcmpl-outage", "object": "chat.completion", "created": int(time.time()),
                                 "model": name, "usage": USAGE, "choices": [
                                     {"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": f"answer from {name}"}}]})

        def _json(self, status: int, payload: dict[str, Any]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass  # quiet: tests read the counts

    return Handler
