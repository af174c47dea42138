"""File names with URL-special characters upload, list through every legacy route, and their signed links work."""

from __future__ import annotations

import threading
import urllib.parse
import urllib.request

import pytest
from werkzeug.serving import make_server

from common import bootstrap
from common.signing import generate_secret
from tests.integration.conftest import Api

ODD_NAMES = ["a#b?.csv", "x%2Fy.csv", "%41 100%.csv", "sales 2024.csv", "a+b=c.csv", "R&D; q1.csv",
             "ventes été ✓ 売上.csv", "it's (v2)!.csv"]
ODD_DOMAIN = "Odd #1 & ü?"  # normalised to "odd-#1-&-ü?"
LISTINGS = ["/datasets?userId=alice", "/datasets?domain={domain}", "/datasets/{domain}/all",
            "/domains/{domain}/datasets"]


def _csv(index: int) -> bytes:
    return f"name_index,double\n{index},{index * 2}\n".encode()


@pytest.fixture
def signed(client, ctx):
    """The test's context with URL_SIGNING_SECRET set, so listed tables carry signed CSV links."""
    bootstrap.use(bootstrap.build(ctx.settings.replace(url_signing_secret=generate_secret()), clock=ctx.clock,
                                  blobs=ctx.blobs, metadata=ctx.metadata))
    return Api(client, "alice")


def _upload_every_way(alice: Api, domain: str) -> None:
    """Upload each odd name once, turn about, through the two legacy multipart routes, the raw one and v1."""
    for index, name in enumerate(ODD_NAMES):
        quoted_domain = urllib.parse.quote(domain, safe="")
        way = index % 4
        if way == 0:
            response = alice.upload(domain, (name, _csv(index)), path="/datasets/upload")
        elif way == 1:
            response = alice.upload(None, (name, _csv(index)), path=f"/upload_datasets/{quoted_domain}",
                                    field="files")
        elif way == 2:
            query = urllib.parse.urlencode({"filename": name})
            response = alice.request("POST", f"/upload_datasets/{quoted_domain}?{query}", data=_csv(index),
                                     content_type="text/csv")
        else:
            response = alice.upload(domain, (name, _csv(index)))
        assert response.status_code == 201, (name, response.get_json())


def _listed(alice: Api, listing: str, domain: str) -> dict[str, str]:
    """Each file's signed link, as a path: the links are absolute, on the host the request named."""
    response = alice.get(listing.format(domain=urllib.parse.quote(domain, safe="")))
    assert response.status_code == 200, (listing, response.get_data(as_text=True))
    links = {item["filename"]: item["signed_url"] for item in response.get_json()["datasets"]}
    assert all(link.startswith("http://localhost/") for link in links.values()), links
    return {name: link.removeprefix("http://localhost") for name, link in links.items()}


@pytest.mark.parametrize("domain", ["campaign", ODD_DOMAIN])
def test_odd_names_list_through_every_legacy_route_with_links_that_serve_the_file(signed, client, domain):
    _upload_every_way(signed, domain)

    for listing in LISTINGS:
        links = _listed(signed, listing, domain)
        assert set(links) == set(ODD_NAMES), listing
        for index, name in enumerate(ODD_NAMES):
            path, _, query = links[name].partition("?")
            assert path.startswith("/files/datasets/alice/") and "#" not in links[name], links[name]
            assert urllib.parse.unquote(path).endswith(f"/{name}") and "?" not in path
            fetched = client.get(links[name])  # no identity: the signature is the permission
            assert fetched.status_code == 200, (name, fetched.get_data(as_text=True))
            assert fetched.get_data(as_text=True).splitlines() == ["name_index,double", f"{index},{index * 2}"]


def test_a_link_for_one_odd_name_does_not_serve_another(signed, client):
    _upload_every_way(signed, "campaign")
    links = _listed(signed, LISTINGS[0], "campaign")

    # "%41 100%.csv" must not be read as "A 100%.csv", nor "x%2Fy.csv" as "x/y.csv": one decoding, no more.
    forged = links["x%2Fy.csv"].replace("x%252Fy.csv", "x%2Fy.csv")
    assert client.get(forged).status_code in (403, 404)
    swapped = links["a#b?.csv"].split("?")[0] + "?" + links["a+b=c.csv"].partition("?")[2]
    assert client.get(swapped).status_code == 403


def test_the_links_work_over_real_http(signed, client, ctx):
    _upload_every_way(signed, ODD_DOMAIN)
    links = _listed(signed, LISTINGS[2], ODD_DOMAIN)
    server = make_server("127.0.0.1", 0, client.application, threaded=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        for index, name in enumerate(ODD_NAMES):
            url = f"http://127.0.0.1:{server.server_port}{links[name]}"
            with urllib.request.urlopen(url, timeout=30) as response:
                assert response.read().decode().splitlines()[1] == f"{index},{index * 2}", name
    finally:
        server.shutdown()
