"""The emulator's HTTP server: cheroot, a threaded production WSGI server with keep-alive.

werkzeug's development server, used before, opened a thread and a connection per request, closed every
connection and listened with a 128-connection backlog: 200 concurrent readers saw a p99 of seconds, most of it
connections waiting to be accepted (BENCHMARKS.md, "Concurrent readers"). cheroot keeps connections alive,
parks idle ones in a selector rather than in a thread, and runs requests on a fixed pool of threads, so a burst
of clients queues for a thread instead of for the kernel's backlog.

A request holds its thread until its answer is sent, an events stream for as long as it streams, which sizes
the pool: DEFAULT_THREADS serves a laptop's streams and a burst of readers at once; ``--threads`` changes it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cheroot import wsgi

DEFAULT_THREADS = 32
# Connections the kernel holds before cheroot accepts them (the kernel caps it at net.core.somaxconn).
BACKLOG = 1024
# Seconds an idle keep-alive connection, or a client that stopped sending mid-request, is kept.
IDLE_TIMEOUT_SECONDS = 30
# Idle keep-alive connections kept at once (cheroot's default, 10, closes the rest after every answer).
KEEP_ALIVE_CONNECTIONS = 1024


class _Gateway(wsgi.Gateway_10):
    """cheroot's WSGI gateway, honouring the application's ``Connection: close``.

    The router answers ``Connection: close`` when it left a request body unread (a refused upload, say). cheroot
    keeps the connection unless told otherwise, and to keep it reads the rest of the body into memory first:
    gigabytes for a hostile client. Closing instead costs nothing.
    """

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
        if any(name.lower() == "connection" and value.strip().lower() == "close" for name, value in headers):
            self.req.close_connection = True
        return super().start_response(status, headers, exc_info)


def make_server(app: Callable, host: str, port: int, threads: int = DEFAULT_THREADS) -> wsgi.Server:
    """A server for ``app`` on ``host:port``; ``serve_forever()`` (or ``prepare()`` then ``serve()``) runs it."""
    server = wsgi.Server((host, port), app, numthreads=threads, server_name="convoinsight-emulator",
                         request_queue_size=BACKLOG, timeout=IDLE_TIMEOUT_SECONDS)
    server.gateway = _Gateway
    server.keep_alive_conn_limit = KEEP_ALIVE_CONNECTIONS
    return server


def serve(app: Callable, host: str, port: int, threads: int = DEFAULT_THREADS) -> None:
    """Serve ``app`` until Ctrl-C, then stop accepting and give running requests a moment to finish."""
    server = make_server(app, host, port, threads)
    try:
        server.start()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
