"""The router: one error body everywhere, 404/405, CORS on every answer, no internals in a 500."""

import flask
import pytest

from common import errors
from common.http import Router, json_body, legacy_detail_body

app = flask.Flask(__name__)


def make_router() -> Router:
    router = Router("test")
    router.cors_origins = lambda: ("https://app.example",)

    @router.route("/items/<name>", methods=["GET"])
    def get_item(request, name):
        if name == "missing":
            raise errors.NotFound(f"no item {name}")
        if name == "boom":
            raise RuntimeError("secret internals /etc/passwd")
        if name == "slow":
            raise errors.RateLimited("slow down", retry_after=7)
        return {"name": name}

    @router.route("/items", methods=["POST"])
    def create(request):
        return json_body(request), 201

    @router.route("/old", methods=["GET"], error_body=legacy_detail_body, headers={"Deprecation": "true"})
    def old(request):
        raise errors.BadRequest("Missing 'domain' or 'file'")

    return router


def call(method, path, **kwargs):
    router = make_router()
    with app.test_request_context(path, method=method, **kwargs):
        return router(flask.request)


def test_handler_result_is_json():
    response = call("GET", "/items/a")
    assert response.status_code == 200
    assert response.get_json() == {"name": "a"}


@pytest.mark.parametrize("method,path,status,code", [
    ("GET", "/items/missing", 404, "NOT_FOUND"),
    ("GET", "/nowhere", 404, "NOT_FOUND"),
    ("DELETE", "/items/a", 405, "METHOD_NOT_ALLOWED"),
    ("POST", "/items", 400, "BAD_REQUEST"),
    ("GET", "/items/slow", 429, "RATE_LIMITED"),
])
def test_errors_share_one_body(method, path, status, code):
    response = call(method, path)
    assert response.status_code == status
    body = response.get_json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]


def test_405_names_allowed_methods():
    assert call("DELETE", "/items/a").headers["Allow"] == "GET"


def test_429_says_when_to_retry():
    assert call("GET", "/items/slow").headers["Retry-After"] == "7"


def test_unexpected_error_is_500_without_internals():
    response = call("GET", "/items/boom")
    assert response.status_code == 500
    body = response.get_json()
    assert "secret" not in response.get_data(as_text=True)
    assert body["error"]["details"]["request_id"] == response.headers["X-Request-Id"]


def test_malformed_json_is_400_with_reason():
    response = call("POST", "/items", data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert "not valid JSON" in response.get_json()["error"]["message"]


def test_oversize_json_is_413():
    response = call("POST", "/items", data=b"[" + b"1," * 600_000 + b"1]", content_type="application/json")
    assert response.status_code == 413


def test_non_object_json_is_400():
    assert call("POST", "/items", data="[1]", content_type="application/json").status_code == 400


def test_legacy_body_and_route_headers_on_errors():
    response = call("GET", "/old")
    assert response.status_code == 400
    assert response.get_json() == {"detail": "Missing 'domain' or 'file'", "code": "BAD_REQUEST"}
    assert response.headers["Deprecation"] == "true"


def test_cors_on_success_and_error_for_allowed_origin_only():
    allowed = {"Origin": "https://app.example"}
    assert call("GET", "/items/a", headers=allowed).headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert call("GET", "/items/missing", headers=allowed).headers["Access-Control-Allow-Origin"] == \
        "https://app.example"
    other = call("GET", "/items/a", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_preflight_lists_methods_and_headers():
    response = call("OPTIONS", "/items/a", headers={"Origin": "https://app.example",
                                                     "Access-Control-Request-Method": "GET",
                                                     "Access-Control-Request-Headers": "content-type"})
    assert response.status_code == 204
    assert "GET" in response.headers["Access-Control-Allow-Methods"]
    assert response.headers["Access-Control-Allow-Headers"] == "content-type"


def test_preflight_of_unknown_path_is_404():
    assert call("OPTIONS", "/nowhere").status_code == 404


def test_legacy_detail_never_carries_markup():
    router = Router("test", error_body=legacy_detail_body)

    @router.route("/x", methods=["GET"])
    def echo(request):
        raise errors.BadRequest("unknown provider '<img src=x onerror=alert(1)>'")

    with app.test_request_context("/x"):
        body = router(flask.request).get_json()
    assert "<img" not in body["detail"] and "&lt;img" in body["detail"]


@pytest.mark.parametrize("path", ["/api/v1/nothing", "/api/v1", "/api/v1/datasets/x/y/z/extra"])
def test_unknown_v1_path_answers_in_v1_shape_even_from_a_legacy_router(path):
    # The gateway's fallback is the legacy function: a mistyped v1 path still gets the v1 error body (issue 10).
    router = Router("legacy", error_body=legacy_detail_body)
    with app.test_request_context(path, method="GET"):
        response = router(flask.request)
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "NOT_FOUND"


def test_unknown_legacy_path_keeps_the_legacy_shape():
    router = Router("legacy", error_body=legacy_detail_body)
    with app.test_request_context("/api/v1x/nothing", method="GET"):
        response = router(flask.request)
    assert response.status_code == 404
    assert set(response.get_json()) == {"detail", "code"}
