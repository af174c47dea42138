"""Which hosts the service may open connections to on a user's behalf (``PG_ALLOWED_HOSTS`` for databases,
``LLM_ALLOWED_HOSTS`` for model endpoints), so it cannot be used to reach or probe its own network.

Syntax: ``*`` allows anything (the default when ``ENVIRONMENT=local``). Otherwise a comma list of entries,
each a host name (``db.internal``: allowed whatever it resolves to, the operator vouches for its DNS), an IP
address or CIDR (``10.2.0.0/16``), or ``public``: any address that is globally routable (no loopback,
private, link-local, CGNAT, multicast, reserved or unspecified address, also not one hidden inside an
IPv4-mapped or 6to4 IPv6 address). Empty means ``*`` locally and ``public`` elsewhere.

A host is allowed when its name is listed, or when every address it resolves to is allowed: an attacker's
DNS answering one public and one private address gets nothing. ``vetted_addresses`` is called at save, at
test and at every connect, and the connection is then opened to the address that was checked, never to the
name again, so a DNS answer that changes between the check and the connect (rebinding) cannot slip through.
Postgres connects to the address itself; an HTTP client that resolves the name on its own (LiteLLM's, for a
model endpoint) runs inside ``pinned_resolution``, where that name resolves to the vetted addresses only.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import ipaddress
import socket
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from common import errors

if TYPE_CHECKING:
    from common.config import Settings

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str], list[str]]


class HostNotAllowed(errors.Forbidden):
    code = "HOST_NOT_ALLOWED"


def system_resolver(host: str) -> list[str]:
    """Return every address ``host`` resolves to (itself for an IP literal), in the resolver's order."""
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclasses.dataclass(frozen=True)
class HostPolicy:
    any_host: bool = False
    public: bool = False
    hostnames: frozenset[str] = frozenset()
    networks: tuple[IpNetwork, ...] = ()
    setting: str = "PG_ALLOWED_HOSTS"  # named in refusals, so an operator knows what to change

    @classmethod
    def parse(cls, spec: str, setting: str = "PG_ALLOWED_HOSTS") -> HostPolicy:
        """Read an allowed-hosts value (see the module docstring); a bad entry is a ConfigurationError."""
        entries = [entry.strip() for entry in spec.split(",") if entry.strip()]
        if "*" in entries:
            return cls(any_host=True, setting=setting)
        hostnames, networks = set(), []
        for entry in entries:
            if entry.lower() == "public":
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                if not _looks_like_hostname(entry):
                    raise errors.ConfigurationError(f"{setting}: {entry!r} is not a host name, "
                                                    f"address, CIDR, 'public' or '*'") from None
                hostnames.add(entry.lower().rstrip("."))
        public = any(entry.lower() == "public" for entry in entries)
        return cls(public=public, hostnames=frozenset(hostnames), networks=tuple(networks), setting=setting)

    @classmethod
    def from_settings(cls, settings: Settings, setting: str = "PG_ALLOWED_HOSTS") -> HostPolicy:
        """The instance's policy for ``setting``, or its default for the environment."""
        spec = getattr(settings, setting.lower()).strip()
        if not spec:
            spec = "*" if settings.environment == "local" else "public"
        return cls.parse(spec, setting)

    def vetted_addresses(self, host: str, resolver: Resolver = system_resolver) -> list[str]:
        """Resolve ``host`` and return its addresses, or raise when the policy refuses any of them."""
        try:
            addresses = resolver(host)
        except (OSError, UnicodeError):
            raise errors.BadRequest(f"the host {host!r} does not resolve", code="HOST_UNRESOLVED") from None
        if not addresses:
            raise errors.BadRequest(f"the host {host!r} does not resolve", code="HOST_UNRESOLVED")
        if self.any_host or host.lower().rstrip(".") in self.hostnames:
            return addresses
        refused = [address for address in addresses if not self._allows(ipaddress.ip_address(address))]
        if refused:
            raise HostNotAllowed(f"connections to {host!r} are not allowed here: it resolves to a non-public "
                                 f"address ({self.setting})")
        return addresses

    def _allows(self, address: IpAddress) -> bool:
        if any(address in network for network in self.networks):
            return True
        return self.public and is_public(address)


def is_public(address: IpAddress) -> bool:
    """Whether ``address`` (and any IPv4 address embedded in it) is globally routable."""
    embedded = [getattr(address, "ipv4_mapped", None), getattr(address, "sixtofour", None)]
    if any(inner is not None and not is_public(inner) for inner in embedded):
        return False
    return address.is_global and not (address.is_private or address.is_loopback or address.is_link_local
                                      or address.is_multicast or address.is_reserved or address.is_unspecified)


def _looks_like_hostname(entry: str) -> bool:
    labels = entry.rstrip(".").split(".")
    return len(entry) <= 253 and all(label and len(label) <= 63 and label.replace("-", "").replace("_", "").isalnum()
                                     and label.isascii() for label in labels)


# Host name -> the addresses it may resolve to, for the calls the current thread (or task) makes right now.
_PINNED: contextvars.ContextVar[dict[str, tuple[str, ...]] | None] = contextvars.ContextVar("pinned_hosts",
                                                                                            default=None)
# The check every other name looked up inside a pin must pass (a redirect's target): the same policy.
_VET_OTHERS: contextvars.ContextVar[Resolver | None] = contextvars.ContextVar("vet_other_hosts", default=None)
_system_getaddrinfo = socket.getaddrinfo


class ResolutionRefused(socket.gaierror):
    """A name looked up inside a pin that the pin's policy refuses: to the HTTP client, a host that never was."""


@contextlib.contextmanager
def pinned_resolution(host: str, addresses: list[str], *, vet_others: Resolver | None = None) -> Iterator[None]:
    """While inside, ``host`` resolves to ``addresses`` only, for this thread's connections.

    With ``vet_others`` (a policy's ``vetted_addresses``), any other name the thread looks up meanwhile, such
    as the host a redirect points at, resolves only to the addresses that check returns and cannot be reached
    when it refuses them; without it, other names are untouched. Installs a ``socket.getaddrinfo`` wrapper
    once per process; outside a pin it is the system resolver.
    """
    _install_resolver()
    token = _PINNED.set({**(_PINNED.get() or {}), _normalised(host): tuple(addresses)})
    vet_token = _VET_OTHERS.set(vet_others) if vet_others is not None else None
    try:
        yield
    finally:
        if vet_token is not None:
            _VET_OTHERS.reset(vet_token)
        _PINNED.reset(token)


def _pinned_getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list:
    pinned = (_PINNED.get() or {}).get(_normalised(host)) if isinstance(host, str) else None
    if pinned is None and isinstance(host, str) and (vet := _VET_OTHERS.get()) is not None:
        pinned = tuple(_vetted_other(vet, host))
    if pinned is None:
        return _system_getaddrinfo(host, port, *args, **kwargs)
    # Each vetted address is an IP literal: resolving it makes no lookup and keeps the caller's socket options.
    return [info for address in pinned for info in _system_getaddrinfo(address, port, *args, **kwargs)]


def _vetted_other(vet: Resolver, host: str) -> list[str]:
    token = _VET_OTHERS.set(None)  # the check resolves the name itself, through the system resolver
    try:
        return vet(host)
    except errors.AppError as exc:
        raise ResolutionRefused(socket.EAI_FAIL, exc.message) from None
    finally:
        _VET_OTHERS.reset(token)


def _install_resolver() -> None:
    if socket.getaddrinfo is not _pinned_getaddrinfo:
        socket.getaddrinfo = _pinned_getaddrinfo


def _normalised(host: str) -> str:
    return host.lower().rstrip(".")
