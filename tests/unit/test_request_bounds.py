"""Requests are bounded and checked at the edge, once, for every route (issue 8, items 7 and 8).

Through a real functions-framework app (its catch-all rule, and its after-request hook that reads whatever
is left of a body): a body no route takes is never read, not even by the framework; too large is 413 in the
route's error shape; the connection closes after a body left unread. JSON nested too deep, text that is not
valid Unicode, numbers outside 64 bits, control characters in a path: 4xx in the canonical shape, never 500.
"""

from __future__ import annotations

import io
import json
import textwrap

import flask
import pytest

from common import bodies, bootstrap, errors
from common.config import Settings
from common.http import Router, json_body, json_response, legacy_detail_body
from common.uploads import receive_multipart

MAX_REQUEST_BYTES = 64 * 1024
BIG = 8 * 1024 * 1024  # far past MAX_REQUEST_BYTES: reading it would show

FUNCTION_SOURCE = textwrap.dedent('''
    from common.http import Router, json_body, legacy_detail_body

    router = Router("probe")

    @router.route("/api/v1/items", methods=["GET"])
    def list_items(request):
        return {"items": []}

    @router.route("/api/v1/items", methods=["POST"])
    def create_item(request):
        return {"created": json_body(request)}, 201

    @router.route("/api/v1/items/<name>", methods=["GET"])
    def get_item(request, name):
        return {"name": name}

    @router.route("/old/items", methods=["POST"], error_body=legacy_detail_body)
    def create_old_item(request):
        return json_body(request)

    def probe(request):
        return router(request)
''')


class CountingBody(io.RawIOBase):
    """A request body of ``size`` bytes that counts what the server reads of it."""

    def __init__(self, size: int, content: bytes = b"x"):
        self.size, self.read_bytes, self.content = size, 0, content

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = min(len(buffer), self.size - self.read_bytes)
        buffer[:count] = (self.content * (count // len(self.content) + 1))[:count]
        self.read_bytes += count
        return count


@pytest.fixture
def context(tmp_path):
    settings = Settings.from_env({}, data_dir=str(tmp_path / "data"), max_request_bytes=MAX_REQUEST_BYTES)
    bootstrap.use(bootstrap.build(settings))
    yield
    bootstrap.use(None)


@pytest.fixture
def app(tmp_path, context):
    import functions_framework

    source = tmp_path / "main.py"
    source.write_text(FUNCTION_SOURCE)
    return functions_framework.create_app(target="probe", source=str(source), signature_type="http")


def send(app, method: str, path: str, body: CountingBody | bytes | None = None, *, chunked: bool = False,
         headers: dict | None = None):
    headers = {"Content-Type": "application/json", **(headers or {})}
    if isinstance(body, bytes):
        body = CountingBody(len(body), body)
    environ = {}
    if body is not None:  # the stream as a WSGI server hands it over: read-only, its length in the headers
        environ["wsgi.input"] = body
        if chunked:
            headers["Transfer-Encoding"] = "chunked"
            environ["wsgi.input_terminated"] = True
        else:
            environ["CONTENT_LENGTH"] = str(body.size)
    return app.test_client().open(path, method=method, headers=headers, environ_overrides=environ)


def assert_v1_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code, body
    return body["error"]


# ------------------------------------------------------------------------------------ refused bodies unread
@pytest.mark.parametrize(("method", "path", "status", "code"), [
    ("POST", "/api/v1/items/a", 405, "METHOD_NOT_ALLOWED"),
    ("PUT", "/api/v1/nowhere", 404, "NOT_FOUND"),
    ("POST", "/api/v1/items", 413, "PAYLOAD_TOO_LARGE"),
])
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_refused_body_is_not_read_and_the_connection_closes(app, method, path, status, code, chunked):
    body = CountingBody(BIG)
    response = send(app, method, path, body, chunked=chunked)
    assert_v1_error(response, status, code)
    assert response.headers["Connection"] == "close"
    if status == 413 and chunked:  # no Content-Length: read while streaming, up to the limit and no further
        assert MAX_REQUEST_BYTES < body.read_bytes <= MAX_REQUEST_BYTES + 64 * 1024 + 1
    else:
        assert body.read_bytes == 0


def test_a_get_with_a_body_is_answered_without_reading_it(app):
    body = CountingBody(BIG)
    response = send(app, "GET", "/api/v1/items", body)
    assert response.status_code == 200 and response.get_json() == {"items": []}
    assert body.read_bytes == 0 and response.headers["Connection"] == "close"


def test_a_body_read_to_its_end_keeps_the_connection(app):
    response = send(app, "POST", "/api/v1/items", b'{"name": "a"}')
    assert response.status_code == 201 and response.get_json() == {"created": {"name": "a"}}
    assert "Connection" not in response.headers


def test_too_large_is_413_in_the_routes_own_shape(app):
    body = CountingBody(BIG)
    response = send(app, "POST", "/old/items", body)
    assert response.status_code == 413
    assert response.get_json()["code"] == "PAYLOAD_TOO_LARGE" and "detail" in response.get_json()
    assert body.read_bytes == 0


def test_a_chunked_json_body_is_read_whole(app):
    response = send(app, "POST", "/api/v1/items", json.dumps({"name": "b" * (MAX_REQUEST_BYTES // 2)}).encode(),
                    chunked=True)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["created"]["name"] == "b" * (MAX_REQUEST_BYTES // 2)


# ------------------------------------------------------------------------ the framework's own 404, in shape
@pytest.mark.parametrize("path", ["/api/v1/items/a%0Ab", "/api/v1/items/%0A", "//api/v1/items", "/robots.txt"])
def test_paths_the_frameworks_catch_all_cannot_match_get_the_canonical_404(app, path):
    body = CountingBody(BIG)
    response = send(app, "POST", path, body)
    assert_v1_error(response, 404, "NOT_FOUND")
    assert response.headers["X-Request-Id"] and body.read_bytes == 0


@pytest.mark.parametrize("path", ["/api/v1/items/a%01b", "/api/v1/items/a%00", "/api/v1/items/%7F"])
def test_a_control_character_in_a_path_parameter_is_404(app, path):
    assert_v1_error(send(app, "GET", path), 404, "NOT_FOUND")


def test_a_query_argument_with_nul_is_400(app):
    error = assert_v1_error(send(app, "GET", "/api/v1/items?domain=a%00b"), 400, "BAD_REQUEST")
    assert "domain" in error["message"]


# ----------------------------------------------------------------------------------------- JSON at the edge
@pytest.mark.parametrize("document", [
    '{"a":' + "[" * 1000 + "]" * 1000 + "}",
    '{"a":' + '{"b":' * 1000 + "1" + "}" * 1000 + "}",
    "[" * 60_000,
])
def test_deeply_nested_json_is_400_not_a_recursion_error(app, document):
    assert len(document) < 200_000
    error = assert_v1_error(send(app, "POST", "/api/v1/items", document.encode()), 400, "BAD_REQUEST")
    assert "nested" in error["message"]


def test_nesting_up_to_the_limit_is_accepted():
    levels = bodies.MAX_JSON_DEPTH - 1
    deepest = bodies.parse_json(('{"a":' + "[" * levels + "]" * levels + "}").encode())["a"]
    for _ in range(levels - 1):
        deepest = deepest[0]
    assert deepest == []
    with pytest.raises(errors.BadRequest):
        bodies.parse_json(("[" * (bodies.MAX_JSON_DEPTH + 1) + "]" * (bodies.MAX_JSON_DEPTH + 1)).encode())


def test_brackets_inside_strings_are_not_nesting():
    document = {"text": "[" * 500 + '{"' * 200, "escaped": '\\"[[[['}
    assert bodies.parse_json(json.dumps(document).encode()) == document


@pytest.mark.parametrize(("document", "at"), [
    (r'{"instructions": "x\ud800y"}', "$.instructions"),
    (r'{"a": [1, {"b": "\udfff"}]}', "$.a[1].b"),
    (r'{"\ud800": 1}', "$"),
    (r'{"a": "nul \u0000 inside"}', "$.a"),
    (r'"\ud83d"', "$"),
])
def test_text_that_is_not_valid_unicode_is_400(app, document, at):
    error = assert_v1_error(send(app, "POST", "/api/v1/items", document.encode()), 400, "BAD_REQUEST")
    assert "not valid text" in error["message"] and error["details"] == {"at": at}


def test_a_surrogate_pair_is_one_valid_character():
    assert bodies.parse_json(rb'{"a": "\ud83d\ude00"}') == {"a": "\U0001F600"}


@pytest.mark.parametrize("document", [
    f'{{"a": {2**63}}}', f'{{"a": [{-(2**63 + 1)}]}}', '{"a": ' + "9" * 5000 + "}",
    '{"a": NaN}', '{"a": -Infinity}', '{"a": 1e400}',
])
def test_numbers_outside_64_bits_or_not_finite_are_400(app, document):
    assert_v1_error(send(app, "POST", "/api/v1/items", document.encode()), 400, "BAD_REQUEST")


def test_numbers_at_the_64_bit_edges_are_kept():
    assert bodies.parse_json(b'[9223372036854775807, -9223372036854775808, 1.5e300]') == \
        [2**63 - 1, -(2**63), 1.5e300]


def test_a_body_that_is_not_utf8_is_400(app):
    error = assert_v1_error(send(app, "POST", "/api/v1/items", b'{"a": "\xed\xa0\x80"}'), 400, "BAD_REQUEST")
    assert "UTF-8" in error["message"]


def test_a_legacy_route_gets_the_same_checks_in_its_shape(app):
    response = send(app, "POST", "/old/items", rb'{"userId": "\ud800"}')
    assert response.status_code == 400 and set(response.get_json()) == {"detail", "code"}


def test_json_response_escapes_a_surrogate_it_is_given():
    response = json_response({"echo": "\ud800"})
    assert json.loads(response.get_data()) == {"echo": "\ud800"}


# ---------------------------------------------------------------------------------------- forms and uploads
def multipart(fields: dict[str, str], filename: str = "a.csv") -> tuple[bytes, str]:
    boundary = "b0undary"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
             for name, value in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                 f"Content-Type: text/csv\r\n\r\na,b\n1,2\n\r\n--{boundary}--\r\n")
    return "".join(parts).encode(), f"multipart/form-data; boundary={boundary}"


def test_a_form_field_with_nul_is_400(tmp_path):
    body, content_type = multipart({"domain": "sales\x00"})
    with flask.Flask(__name__).test_request_context("/", method="POST", data=body, content_type=content_type):
        with pytest.raises(errors.BadRequest, match="form field 'domain'"):
            receive_multipart(flask.request, str(tmp_path), max_file_bytes=1024, max_files=1, file_fields=("file",))


def test_a_chunked_upload_is_cut_at_its_limit(tmp_path):
    body, content_type = multipart({"domain": "sales"})
    body = body.replace(b"a,b\n1,2\n", b"x" * 100_000)
    stream = CountingBody(len(body), body)
    with flask.Flask(__name__).test_request_context(
            "/", method="POST", headers={"Transfer-Encoding": "chunked"},
            environ_overrides={"wsgi.input": stream, "wsgi.input_terminated": True, "CONTENT_TYPE": content_type}):
        with pytest.raises(errors.PayloadTooLarge):
            receive_multipart(flask.request, str(tmp_path), max_file_bytes=1024, max_files=1, file_fields=("file",))
        assert bodies.left_unread(flask.request)


def test_json_body_outside_functions_framework_reads_the_setting(context):
    router = Router("probe", error_body=legacy_detail_body)

    @router.route("/x", methods=["POST"])
    def echo(request):
        return json_body(request)

    data = json.dumps({"a": "x" * MAX_REQUEST_BYTES}).encode()
    with flask.Flask(__name__).test_request_context("/x", method="POST", data=data):
        response = router(flask.request)
    assert response.status_code == 413 and response.get_json()["code"] == "PAYLOAD_TOO_LARGE"
