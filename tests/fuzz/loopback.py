"""Keep a process's connections on loopback: any other address is refused before a packet leaves.

Installed first thing in the fuzzed emulator (``tests/fuzz/serve.py``): host names other than ``localhost``
do not resolve (no DNS query leaves either), and connecting to a non-loopback address fails as an unreachable
network does, which the server must answer as an honest 502/503.
"""

from __future__ import annotations

import errno
import ipaddress
import socket

_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def is_loopback(host: object) -> bool:
    """Whether ``host`` (an address or ``localhost``) stays on this machine."""
    if not isinstance(host, str | bytes):
        return False
    name = host.decode() if isinstance(host, bytes) else host
    if name.lower() in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(name.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def install() -> None:
    """Refuse name resolution and connections that would leave loopback, in this process."""
    resolve, connect, connect_ex = socket.getaddrinfo, socket.socket.connect, socket.socket.connect_ex

    def guarded_getaddrinfo(host, *args, **kwargs):
        if host is not None and not is_loopback(host):
            raise socket.gaierror(socket.EAI_NONAME, f"{host!r}: only loopback resolves while fuzzing")
        return resolve(host, *args, **kwargs)

    def refuse(sock: socket.socket, address) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not is_loopback(address[0]):
            raise OSError(errno.ENETUNREACH, f"{address[0]}: only loopback is reachable while fuzzing")

    def guarded_connect(sock, address):
        refuse(sock, address)
        return connect(sock, address)

    def guarded_connect_ex(sock, address):
        refuse(sock, address)
        return connect_ex(sock, address)

    socket.getaddrinfo = guarded_getaddrinfo
    socket.socket.connect = guarded_connect
    socket.socket.connect_ex = guarded_connect_ex
