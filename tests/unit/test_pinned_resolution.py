"""Inside ``pinned_resolution`` a name resolves to the vetted addresses only, for this thread, and only then."""

from __future__ import annotations

import socket
import threading

import pytest

from common import hosts


@pytest.fixture
def dns(monkeypatch):
    """A resolver that knows one name (answering 127.0.0.9, as a rebinding DNS would) and IP literals."""

    def resolve(host, port, *args, **kwargs):
        address = "127.0.0.9" if host == "api.example.test" else host
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(hosts, "_system_getaddrinfo", resolve)
    monkeypatch.setattr(socket, "getaddrinfo", resolve)


def _address(host: str) -> str:
    return socket.getaddrinfo(host, 443)[0][4][0]


def test_a_pinned_name_resolves_to_the_vetted_addresses_only_inside(dns):
    with hosts.pinned_resolution("API.example.test.", ["127.0.0.1", "127.0.0.2"]):
        assert [info[4][0] for info in socket.getaddrinfo("api.example.test", 443)] == ["127.0.0.1", "127.0.0.2"]
        assert _address("other.example.test") == "other.example.test"  # other names are untouched
    assert _address("api.example.test") == "127.0.0.9"


def test_a_pin_holds_for_its_own_thread_only(dns):
    seen = []
    with hosts.pinned_resolution("api.example.test", ["127.0.0.1"]):
        worker = threading.Thread(target=lambda: seen.append(_address("api.example.test")))
        worker.start()
        worker.join()
        assert _address("api.example.test") == "127.0.0.1"
    assert seen == ["127.0.0.9"]
