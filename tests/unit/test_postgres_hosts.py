"""The Postgres host policy: what PG_ALLOWED_HOSTS lets connections reach, with an injected resolver."""

from __future__ import annotations

import socket

import pytest

from common import errors
from common.config import Settings
from common.hosts import HostNotAllowed, HostPolicy, is_public
from common.services.postgres.engines import open_socket


def resolver(table: dict[str, list[str]]):
    def resolve(host: str) -> list[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    return resolve


DNS = resolver({
    "db.example.com": ["93.184.216.34"],
    "v6.example.com": ["2606:2800:220:1:248:1893:25c8:1946"],
    "localhost": ["127.0.0.1", "::1"],
    "metadata.google.internal": ["169.254.169.254"],
    "mixed.example.com": ["93.184.216.34", "10.0.0.5"],
    "db.internal": ["10.1.2.3"],
    "127.0.0.1": ["127.0.0.1"],
})


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254",
                                     "100.64.0.1", "0.0.0.0", "224.0.0.1", "240.0.0.1", "255.255.255.255", "::1",
                                     "fe80::1", "fc00::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
                                     "2002:7f00:1::1", "64:ff9b::7f00:1", "ff02::1", "::"])
def test_non_public_addresses_are_not_public(address):
    import ipaddress

    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:2800:220:1:248:1893:25c8:1946"])
def test_public_addresses_are_public(address):
    import ipaddress

    assert is_public(ipaddress.ip_address(address))


def test_public_policy_allows_public_hosts_and_returns_their_addresses():
    policy = HostPolicy.parse("public")
    assert policy.vetted_addresses("db.example.com", DNS) == ["93.184.216.34"]
    assert policy.vetted_addresses("v6.example.com", DNS) == ["2606:2800:220:1:248:1893:25c8:1946"]


@pytest.mark.parametrize("host", ["localhost", "metadata.google.internal", "127.0.0.1", "db.internal",
                                  "mixed.example.com"])
def test_public_policy_refuses_hosts_that_reach_inside(host):
    with pytest.raises(HostNotAllowed) as refused:
        HostPolicy.parse("public").vetted_addresses(host, DNS)
    assert refused.value.status == 403


def test_listed_names_and_networks_are_allowed_beside_public():
    policy = HostPolicy.parse("public, db.internal, 192.168.0.0/16")
    assert policy.vetted_addresses("db.internal", DNS) == ["10.1.2.3"]
    assert policy.vetted_addresses("DB.Internal.", resolver({"DB.Internal.": ["10.1.2.3"]})) == ["10.1.2.3"]
    assert policy.vetted_addresses("nas", resolver({"nas": ["192.168.7.7"]})) == ["192.168.7.7"]
    with pytest.raises(HostNotAllowed):
        policy.vetted_addresses("localhost", DNS)


def test_a_list_without_public_allows_only_what_it_names():
    policy = HostPolicy.parse("10.0.0.0/8")
    assert policy.vetted_addresses("db.internal", DNS) == ["10.1.2.3"]
    with pytest.raises(HostNotAllowed):
        policy.vetted_addresses("db.example.com", DNS)


def test_star_allows_anything_that_resolves():
    assert HostPolicy.parse("*").vetted_addresses("localhost", DNS) == ["127.0.0.1", "::1"]


def test_a_host_that_does_not_resolve_is_a_bad_request():
    with pytest.raises(errors.BadRequest) as refused:
        HostPolicy.parse("*").vetted_addresses("nowhere.invalid", DNS)
    assert refused.value.code == "HOST_UNRESOLVED"


@pytest.mark.parametrize("environ,expected", [
    ({}, HostPolicy(any_host=True)),
    ({"ENVIRONMENT": "prod", "AUTH_MODE": "gateway"}, HostPolicy(public=True)),
    ({"ENVIRONMENT": "dev", "PG_ALLOWED_HOSTS": "*"}, HostPolicy(any_host=True)),
    ({"PG_ALLOWED_HOSTS": "public"}, HostPolicy(public=True)),
])
def test_the_default_is_anything_locally_and_public_elsewhere(environ, expected):
    assert HostPolicy.from_settings(Settings.from_env(environ)) == expected


@pytest.mark.parametrize("spec", ["db/evil", "10.0.0.0/33", "bad host", "user@db"])
def test_a_malformed_entry_is_a_configuration_error(spec):
    with pytest.raises(errors.ConfigurationError, match="PG_ALLOWED_HOSTS"):
        HostPolicy.parse(spec)


def test_connect_checks_the_policy_every_time_so_dns_rebinding_is_refused():
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])
    rebinding = lambda host: next(answers)  # noqa: E731 - public at save, loopback at connect
    policy = HostPolicy.parse("public")
    assert policy.vetted_addresses("rebind.example.com", rebinding) == ["93.184.216.34"]
    with pytest.raises(HostNotAllowed):
        open_socket("rebind.example.com", 5432, policy, 1.0, 1.0, resolver=rebinding)


def test_connect_goes_to_the_vetted_address_not_the_name():
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        # The name resolves (through the injected resolver only) to the checked loopback address.
        sock = open_socket("db.test", port, HostPolicy.parse("127.0.0.0/8"), 1.0, 1.0,
                           resolver=resolver({"db.test": ["127.0.0.1"]}))
        with sock:
            assert sock.getpeername() == ("127.0.0.1", port)


def test_an_unreachable_address_is_an_upstream_error_naming_host_and_port():
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
    with pytest.raises(errors.UpstreamError, match=f"127.0.0.1:{port}") as failed:
        open_socket("127.0.0.1", port, HostPolicy.parse("*"), 1.0, 1.0)
    assert failed.value.code == "PG_UNREACHABLE"
