"""Signed URLs: what was signed is served until it expires; anything changed is refused."""

import urllib.parse

import pytest
from werkzeug.datastructures import MultiDict

from common.errors import ConfigurationError, Forbidden
from common.signing import HmacUrlSigner, generate_secret, sign_path, verify

SECRET = b"s" * 32
OTHER_SECRET = b"o" * 32
PATH = "/api/v1/charts/0001-abcd/content.html"
NOW = 1_800_000_000


def signed(path=PATH, *, secret=SECRET, expires_at=NOW + 60, params=None):
    url = sign_path(path, secret=secret, expires_at=expires_at, params=params or {"ns": "alice"})
    base, _, query = url.partition("?")
    return base, dict(urllib.parse.parse_qsl(query))


def test_a_signed_path_verifies_until_it_expires():
    path, args = signed()
    assert path == PATH and set(args) == {"ns", "expires", "signature"}
    verify(path, args, secret=SECRET, now=NOW + 59)
    with pytest.raises(Forbidden) as caught:
        verify(path, args, secret=SECRET, now=NOW + 60)
    assert caught.value.code == "URL_EXPIRED"


@pytest.mark.parametrize("tamper", [
    lambda path, args: ("/api/v1/charts/0002-abcd/content.html", args),
    lambda path, args: (path.replace(".html", ".png"), args),
    lambda path, args: (path, {**args, "expires": str(NOW + 3600)}),
    lambda path, args: (path, {**args, "ns": "bob"}),
    lambda path, args: (path, {**args, "extra": "1"}),
    lambda path, args: (path, {key: value for key, value in args.items() if key != "ns"}),
    lambda path, args: (path, {**args, "signature": args["signature"][:-2] + "AA"}),
    lambda path, args: (path, {**args, "signature": "ü" * 43}),
    lambda path, args: (path, {key: value for key, value in args.items() if key != "signature"}),
])
def test_a_changed_url_is_refused(tamper):
    path, args = tamper(*signed())
    with pytest.raises(Forbidden) as caught:
        verify(path, args, secret=SECRET, now=NOW)
    assert caught.value.code == "BAD_SIGNATURE"


def test_a_url_signed_with_another_secret_is_refused():
    path, args = signed(secret=OTHER_SECRET)
    with pytest.raises(Forbidden):
        verify(path, args, secret=SECRET, now=NOW)


def test_a_repeated_parameter_is_refused():
    path, args = signed()
    query = MultiDict(list(args.items()) + [("ns", "bob")])
    with pytest.raises(Forbidden, match="repeats"):
        verify(path, query, secret=SECRET, now=NOW)


def test_the_signer_rotates_secrets_signing_with_the_first_and_accepting_all():
    old = HmacUrlSigner([OTHER_SECRET])
    rotated = HmacUrlSigner.from_setting(f"{SECRET.decode()}, {OTHER_SECRET.decode()}")
    url = old.sign(PATH, expires_at=NOW + 60, params={"ns": "alice"})
    path, _, query = url.partition("?")
    rotated.verify(path, dict(urllib.parse.parse_qsl(query)), now=NOW)
    new_url = rotated.sign(PATH, expires_at=NOW + 60)
    with pytest.raises(Forbidden):
        old.verify(PATH, dict(urllib.parse.parse_qsl(new_url.partition("?")[2])), now=NOW)


@pytest.mark.parametrize("setting", ["", " , ", "short"])
def test_an_empty_or_short_secret_is_a_configuration_error(setting):
    with pytest.raises(ConfigurationError, match="URL_SIGNING_SECRET"):
        HmacUrlSigner.from_setting(setting)


def test_generated_secrets_are_long_enough_and_differ():
    first, second = generate_secret(), generate_secret()
    assert first != second
    HmacUrlSigner.from_setting(first)


def test_only_absolute_paths_without_reserved_parameters_can_be_signed():
    with pytest.raises(ValueError):
        sign_path("files/a.csv", secret=SECRET, expires_at=NOW)
    with pytest.raises(ValueError):
        sign_path("/a", secret=SECRET, expires_at=NOW, params={"signature": "x"})


@pytest.mark.parametrize("name", ["a#b?.csv", "x%2Fy.csv", "%41.csv", "sales 2024.csv", "a+b=c&d;e.csv",
                                  "ventes été ✓.csv"])
def test_a_path_is_signed_as_the_server_decodes_it_and_sent_encoded(name):
    decoded = f"/files/datasets/alice/campaign/{name}"

    url = sign_path(decoded, secret=SECRET, expires_at=NOW + 60)

    sent_path, _, query = url.partition("?")
    assert "#" not in url and sent_path.isascii() and " " not in sent_path
    received = urllib.parse.unquote(sent_path)  # what a WSGI server hands the app as the path
    assert received == decoded
    verify(received, dict(urllib.parse.parse_qsl(query)), secret=SECRET, now=NOW)


@pytest.mark.parametrize("name", ["x%2Fy.csv", "%41.csv"])
def test_a_percent_in_a_name_is_decoded_once_only(name):
    url = sign_path(f"/files/{name}", secret=SECRET, expires_at=NOW + 60)
    sent_path, _, query = url.partition("?")

    with pytest.raises(Forbidden):  # decoded twice, "%41" would be "A": another path, not the one signed
        verify(urllib.parse.unquote(urllib.parse.unquote(sent_path)), dict(urllib.parse.parse_qsl(query)),
               secret=SECRET, now=NOW)
