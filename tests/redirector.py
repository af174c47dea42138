"""``allowed.test``: an endpoint on loopback that answers every POST with a 307 to another server by its IP, as an
endpoint that wants to reach the service's own network would; the name resolves to 127.0.0.1 while it runs."""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
from collections.abc import Iterator

from common import hosts


@contextlib.contextmanager
def redirecting_endpoint(target_url: str, monkeypatch) -> Iterator[tuple[str, list[str]]]:
    """Serve ``allowed.test`` redirecting to ``target_url``'s server; yield (its /v1 base URL, paths it was asked)."""
    target, hits = target_url.rsplit("/v1", 1)[0], []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the http.server protocol
            hits.append(self.path)
            self.send_response(307)
            self.send_header("Location", target + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    real = hosts._system_getaddrinfo

    def resolve(host, port, *args, **kwargs):
        return real("127.0.0.1" if host == "allowed.test" else host, port, *args, **kwargs)

    monkeypatch.setattr(hosts, "_system_getaddrinfo", resolve)
    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    try:
        yield f"http://allowed.test:{server.server_address[1]}/v1", hits
    finally:
        server.shutdown()
        server.server_close()
