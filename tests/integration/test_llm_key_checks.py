"""A key check's list request is bounded whoever answers it: size, time, redirects, encodings, and the key.

Real httpx against servers on loopback that answer as badly as a user's endpoint may: bodies that never end,
bodies announced as huge, gzip, a drip of bytes, silence, redirects to another host, statuses and non-JSON.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
import zlib

import pytest

from common import errors
from common.config import Settings
from common.hosts import HostNotAllowed, HostPolicy
from common.llm import model_lists
from common.llm.model_lists import ListRequest
from common.services.llm_config import key_checks
from tests.model_server import ModelServer, Reply

KEY = "sk-check-secret-0123456789abcdef"
LISTING = {"object": "list", "data": [{"id": "llama3.1:8b", "object": "model"}]}
SAFETY_BYTES = 256 * 1024 * 1024  # what an endless body stops at all the same, so a client without a cap fails


class BadEndpoint:
    """Answers ``GET /<behaviour>/models`` as the behaviour says; records each request and the bytes it sent."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.sent: dict[str, int] = {}
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - the http.server hook's name
                behaviour = self.path.strip("/").split("/")[0]
                endpoint.requests.append((self.path, dict(self.headers)))
                try:
                    getattr(self, f"_{behaviour.replace('-', '_')}")()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client hung up: what a bounded client does

            def _send(self, status: int, body: bytes, **headers: str) -> None:
                self.send_response(status)
                for name, value in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(name.replace("_", "-"), value)
                self.end_headers()
                self.wfile.write(body)

            def _ok(self) -> None:
                self._send(200, json.dumps(LISTING).encode(), Content_Type="application/json")

            def _endless(self) -> None:  # a chunked list that never ends
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                block, sent = b"a" * 65536, 0
                self.wfile.write(b'%x\r\n{"data": ["\r\n' % 11)
                while sent < SAFETY_BYTES:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))
                    sent += len(block)
                    endpoint.sent[self.path] = sent

            def _announced(self) -> None:  # says 100 MB up front
                self.send_response(200)
                self.send_header("Content-Length", str(100 * 1024 * 1024))
                self.end_headers()
                self.wfile.write(b'{"data": [')

            def _gzip(self) -> None:  # a small, valid list, compressed though identity was asked for
                compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
                body = compressor.compress(json.dumps(LISTING).encode()) + compressor.flush()
                self._send(200, body, Content_Encoding="gzip", Content_Type="application/json")

            def _drip(self) -> None:  # a byte every 50 ms, for a minute
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for sent in range(1200):
                    self.wfile.write(b"1\r\n \r\n")
                    self.wfile.flush()
                    endpoint.sent[self.path] = sent + 1
                    time.sleep(0.05)

            def _silent(self) -> None:
                time.sleep(5)

            def _elsewhere(self) -> None:  # to another origin: the same host on another port
                other = f"http://127.0.0.1:{self.server.server_port + 1 if self.server.server_port < 65535 else 1}"
                self._send(307, b"", Location=f"{other}/ok/models")

            def _here(self) -> None:  # within the origin
                self._send(307, b"", Location="/ok/models")

            def _loop(self) -> None:
                self._send(302, b"", Location="/loop/models")

            def _html(self) -> None:
                self._send(200, b"<html>sign in</html>", Content_Type="text/html")

            def _missing(self) -> None:
                self._send(404, b'{"error": "no such route"}')

            def _broken(self) -> None:
                self._send(500, b'{"error": "' + KEY.encode() + b' is not valid here"}')

            def _busy(self) -> None:
                self._send(429, b'{"error": "quota"}')

            def _refused(self) -> None:
                self._send(401, b'{"error": {"message": "Incorrect API key provided: ' + KEY.encode() + b'"}}')

            def log_message(self, *args: object) -> None:
                pass

        return Handler


@pytest.fixture(scope="module")
def bad():
    endpoint = BadEndpoint()
    yield endpoint
    endpoint.close()


def listed(bad: BadEndpoint, behaviour: str, *, timeout: float = 5.0, **kwargs):
    return model_lists.list_models(ListRequest(f"{bad.url}/{behaviour}"), KEY, who="the endpoint",
                                   timeout_seconds=timeout, **kwargs)


def test_a_good_answer_is_read_with_the_key_in_its_header_only(bad):
    assert listed(bad, "ok") == (model_lists.ServedModel("llama3.1:8b"),)
    path, headers = bad.requests[-1]
    assert path == "/ok/models" and headers["Authorization"] == f"Bearer {KEY}" and KEY not in path
    assert headers["Accept-Encoding"] == "identity"


def test_a_body_that_never_ends_is_cut_at_the_cap(bad):
    with pytest.raises(errors.UpstreamError) as failure:
        listed(bad, "endless")
    assert failure.value.code == "MODEL_LIST_TOO_LARGE"
    time.sleep(0.5)  # the server notices the hang-up at its next write
    assert bad.sent["/endless/models"] < SAFETY_BYTES / 4  # read no further than the cap (and socket buffers)


def test_a_body_announced_too_large_is_refused_before_it_is_read(bad):
    with pytest.raises(errors.UpstreamError) as failure:
        listed(bad, "announced")
    assert failure.value.code == "MODEL_LIST_TOO_LARGE" and str(model_lists.MAX_LIST_BYTES) in failure.value.message


def test_a_compressed_body_is_refused_not_inflated(bad):
    with pytest.raises(errors.UpstreamError) as failure:
        listed(bad, "gzip")
    assert failure.value.code == "MODEL_LIST_UNREADABLE"


def test_a_server_that_drips_is_cut_off_at_the_deadline():
    """The clock is the test's: each look at it is 1 s later, so the 3 s deadline passes within a few bytes."""
    endpoint = BadEndpoint()
    ticks = iter(range(10_000))
    try:
        with pytest.raises(errors.UpstreamError) as failure:
            listed(endpoint, "drip", timeout=3.0, now=lambda: float(next(ticks)))
        assert failure.value.code == "PROVIDER_TIMEOUT"
        time.sleep(0.2)
        assert endpoint.sent["/drip/models"] < 20  # of the 1200 bytes it would have sent over a minute
    finally:
        endpoint.close()


def test_a_silent_server_times_out(bad):
    with pytest.raises(errors.UpstreamError) as failure:
        listed(bad, "silent", timeout=0.5)
    assert failure.value.code == "PROVIDER_TIMEOUT" and "0.5 s" in failure.value.message


def test_a_redirect_to_another_origin_is_not_followed(bad):
    before = len(bad.requests)
    with pytest.raises(errors.UpstreamError) as failure:
        listed(bad, "elsewhere")
    assert failure.value.code == "PROVIDER_REDIRECTED" and len(bad.requests) == before + 1


def test_a_redirect_within_the_origin_is_followed_a_few_times_at_most(bad):
    assert listed(bad, "here") == (model_lists.ServedModel("llama3.1:8b"),)
    assert [path for path, _ in bad.requests[-2:]] == ["/here/models", "/ok/models"]
    before = len(bad.requests)
    with pytest.raises(errors.UpstreamError, match="more than 3 times"):
        listed(bad, "loop")
    assert len(bad.requests) - before == model_lists.MAX_REDIRECTS + 1


@pytest.mark.parametrize("behaviour, error, code", [
    ("refused", errors.BadRequest, "KEY_REFUSED"), ("missing", errors.UpstreamError, "MODEL_LIST_UNAVAILABLE"),
    ("broken", errors.UpstreamError, "PROVIDER_ERROR"), ("busy", errors.UpstreamError, "PROVIDER_RATE_LIMITED"),
    ("html", errors.UpstreamError, "MODEL_LIST_UNREADABLE"),
])
def test_every_failure_says_why_and_never_quotes_the_server_or_the_key(bad, caplog, behaviour, error, code):
    caplog.set_level("DEBUG")
    with pytest.raises(error) as failure:
        listed(bad, behaviour)
    assert failure.value.code == code and failure.value.message.startswith("the endpoint")
    assert KEY not in failure.value.message and KEY not in caplog.text


def test_an_unreachable_endpoint_is_a_502():
    with pytest.raises(errors.UpstreamError) as failure:
        model_lists.list_models(ListRequest("http://127.0.0.1:1/v1"), KEY, who="the endpoint", timeout_seconds=5)
    assert failure.value.code == "PROVIDER_UNREACHABLE"


def test_an_endpoint_the_host_policy_refuses_is_never_asked(bad):
    before = len(bad.requests)
    with pytest.raises(HostNotAllowed, match="LLM_ALLOWED_HOSTS"):
        listed(bad, "ok", vet_host=HostPolicy.parse("public", "LLM_ALLOWED_HOSTS").vetted_addresses)
    assert len(bad.requests) == before


@pytest.fixture(scope="module")
def endpoint():
    listing = ({"id": "nomic-embed-text"}, {"id": "bge-m3", "type": "embedding"})
    with ModelServer(lambda agent, messages: Reply("unused"), listing=listing, accepted_keys={KEY}) as server:
        yield server


def test_an_endpoint_that_lists_no_chat_model_is_no_use_for_questions(endpoint):
    with pytest.raises(errors.UpstreamError) as failure:
        key_checks.check_key(Settings.from_env({}), "hosted_vllm", KEY, endpoint.url)
    assert failure.value.code == "NO_CHAT_MODELS"


def test_a_provider_named_in_llm_key_check_urls_is_asked_openais_way(endpoint):
    settings = Settings.from_env({}, llm_key_check_urls=f"perplexity={endpoint.url}")
    checked = key_checks.check_key(settings, "perplexity", KEY, None)
    assert not checked.served and "perplexity/sonar" in checked.models  # the provider's models: the map's
    assert endpoint.listings[-1] == ("/v1/models", KEY)
