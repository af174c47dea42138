"""The emulator's HTTP server (local_emulator/http_server.py): keep-alive, a bounded thread pool that queues,
streaming that is not buffered, and an unread body that is never read to its end."""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
from collections.abc import Callable, Iterator

from local_emulator import http_server


@contextlib.contextmanager
def serving(app: Callable, threads: int = 4) -> Iterator[int]:
    server = http_server.make_server(app, "127.0.0.1", 0, threads)
    server.prepare()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield server.bind_addr[1]
    finally:
        server.stop()


def hello(environ: dict, start_response: Callable) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello"]


def test_a_connection_is_kept_for_the_next_request():
    with serving(hello) as port:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.auto_open = 0
        connection.connect()
        for _ in range(3):  # auto_open off: a closed connection would fail here instead of reconnecting
            connection.request("GET", "/")
            response = connection.getresponse()
            assert (response.status, response.read()) == (200, b"hello")
            assert not response.will_close
        connection.close()


def test_more_requests_than_threads_wait_for_one_and_are_all_answered():
    release, started = threading.Event(), threading.Semaphore(0)

    def slow(environ: dict, start_response: Callable) -> list[bytes]:
        started.release()
        release.wait(10)
        return hello(environ, start_response)

    answers: list[int] = []

    def ask(port: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        connection.request("GET", "/")
        answers.append(connection.getresponse().status)
        connection.close()

    with serving(slow, threads=2) as port:
        clients = [threading.Thread(target=ask, args=(port,)) for _ in range(5)]
        for client in clients:
            client.start()
        assert started.acquire(timeout=5) and started.acquire(timeout=5)
        assert not started.acquire(timeout=0.5), "a third request ran while both threads were busy"
        release.set()
        for client in clients:
            client.join(20)
    assert answers == [200] * 5


def test_a_stream_reaches_the_client_as_it_is_written():
    def stream(environ: dict, start_response: Callable) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/event-stream")])
        yield b"data: first\n\n"
        time.sleep(1.5)
        yield b"data: second\n\n"

    with serving(stream) as port:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        began = time.monotonic()
        connection.request("GET", "/")
        response = connection.getresponse()
        assert response.readline() == b"data: first\n"
        assert time.monotonic() - began < 1.0, "the first event waited for the second"
        assert b"second" in response.read()


def test_an_answer_that_says_close_does_not_wait_for_the_unread_body():
    """The router answers ``Connection: close`` when it refuses a body; the server must not read the rest."""
    def refuse(environ: dict, start_response: Callable) -> list[bytes]:
        start_response("400 BAD REQUEST", [("Content-Length", "7"), ("Connection", "close")])
        return [b"refused"]

    with serving(refuse) as port:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        # A gigabyte announced, a kilobyte sent: reading the rest would wait for the socket's timeout.
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n" + b"x" * 1024)
        began = time.monotonic()
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        sock.close()
        assert received.startswith(b"HTTP/1.1 400")
        assert received.endswith(b"refused")
        assert received.lower().count(b"connection: close") == 1
        assert time.monotonic() - began < 5, "the server read on before closing"
