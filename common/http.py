"""The in-function router, the one error body, CORS and JSON responses.

functions-framework hands each function every path and method, so each function routes for itself with a
``Router`` (werkzeug ``Map``/``Rule``). The router answers 404/405 and CORS preflights, adds CORS headers to
every response (errors included: browsers hide bodies without them), and turns every exception into the
canonical error body. Unknown exceptions become a 500 carrying only a request id; the traceback is logged.

It is also the edge where requests are checked, once, for every route (``common.bodies``): a path parameter
with a control character is a 404, a query argument that is not valid text a 400, a JSON body is parsed only
by ``json_body`` (bounded size and depth, valid text), and a body the answer did not read is never read
afterwards: the connection closes instead. Loaded by functions-framework, the router also answers the
framework's own 404s (a path its catch-all rule cannot match, such as one with a newline) in its error body.
"""

from __future__ import annotations

import html
import json
import logging
import uuid
from collections.abc import Callable, Collection
from typing import Any, NamedTuple

import flask
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import MethodNotAllowed as RoutingMethodNotAllowed
from werkzeug.exceptions import NotFound as RoutingNotFound
from werkzeug.routing import Map, Rule
from werkzeug.routing.exceptions import RequestRedirect

from common import audit, bodies, errors, logs, scratch

log = logging.getLogger("convoinsight.http")

V1_PREFIX = "/api/v1"
Handler = Callable[..., Any]
ErrorBody = Callable[[errors.AppError, str], dict]
# Refusals that go to the audit log stream: who is calling could not be established, or may not do this.
_AUDITED_REFUSALS = {errors.Unauthorized.status: "auth.refused", errors.Forbidden.status: "authz.refused"}
# Where the router leaves the matched route's accepted body fields for ``json_body`` (None: not checked).
_BODY_FIELDS = "convoinsight.body_fields"


def v1_error_body(error: errors.AppError, request_id: str) -> dict:
    """Build the v1 error body: ``{"error": {"code", "message", "details"}}``."""
    details = error.details if error.details is not None else {}
    if error.status >= 500 and isinstance(details, dict):
        details = {**details, "request_id": request_id}
    return {"error": {"code": error.code, "message": error.message, "details": details}}


def legacy_detail_body(error: errors.AppError, request_id: str) -> dict:
    """Build the original API's error body: ``{"detail": message, "code": code}``.

    The message is HTML-escaped: the original frontend renders ``detail`` as HTML (FRONTEND_CONTRACT.md §4.2),
    and messages may quote what the request sent.
    """
    return {"detail": html.escape(error.message, quote=False), "code": error.code}


class Router:
    """Routes one function's requests by path and method, and translates errors."""

    def __init__(self, function_name: str, *, error_body: ErrorBody = v1_error_body):
        self.function_name = function_name
        self.error_body = error_body
        self._map = Map(strict_slashes=False, merge_slashes=False)
        self._handlers: dict[str, _Route] = {}
        self.cors_origins: Callable[[], tuple[str, ...]] = _configured_cors_origins
        if flask.has_app_context():  # functions-framework imports the function's module inside its app's context
            self.answer_framework_errors(flask.current_app)

    def answer_framework_errors(self, app: flask.Flask) -> None:
        """Answer ``app``'s own HTTP errors (its catch-all rule's 404s) as this router answers its own."""
        app.register_error_handler(HTTPException, self._framework_error)

    def route(self, path: str, methods: list[str], *, error_body: ErrorBody | None = None,
              headers: dict[str, str] | None = None,
              body_fields: Collection[str] | None = None) -> Callable[[Handler], Handler]:
        """Register ``handler(request, **path_params)`` for ``path`` and ``methods``.

        ``body_fields`` are the fields the route's JSON body may have: ``json_body`` refuses any other with a
        400 naming them (every v1 route with a JSON body declares them; the original API's routes do not).
        """

        def register(handler: Handler) -> Handler:
            endpoint = f"{handler.__name__}:{len(self._handlers)}"
            self._map.add(Rule(path, methods=methods, endpoint=endpoint))
            fields = frozenset(body_fields) if body_fields is not None else None
            self._handlers[endpoint] = _Route(handler, error_body or self.error_body, headers or {}, fields)
            return handler

        return register

    def rules(self) -> list[tuple[str, tuple[str, ...]]]:
        """List (path, methods) of every route, for documentation and tests."""
        return [(rule.rule, tuple(sorted(rule.methods - {"HEAD", "OPTIONS"}))) for rule in self._map.iter_rules()]

    def body_fields(self) -> dict[tuple[str, str], frozenset[str] | None]:
        """The accepted JSON body fields of every (rule, method), for tests that compare them to the document."""
        return {(rule.rule, method): self._handlers[rule.endpoint].body_fields
                for rule in self._map.iter_rules() for method in rule.methods - {"HEAD", "OPTIONS"}}

    def __call__(self, request: flask.Request) -> flask.Response:
        """Answer one request; this is what each function's entry point returns."""
        request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex
        folder = scratch.RequestFolder()  # the request's temporary files, made on first use
        with logs.request_scope(request_id, logs.trace_id_of(request.headers)), scratch.request_folder(folder), \
                audit.request_origin(request_id, request.remote_addr, request.headers.get("X-Forwarded-For")):
            response = self._answer(request, request_id)
        # After the body is sent: an export streams a file from the folder.
        response.call_on_close(folder.remove)
        return response

    def _answer(self, request: flask.Request, request_id: str) -> flask.Response:
        error_body, extra_headers = self._unmatched_error_body(request.path), {}
        try:
            adapter = self._map.bind("", path_info=request.path, url_scheme=request.scheme)
            if request.method == "OPTIONS":
                response = self._preflight(adapter, request)
            else:
                endpoint, params = adapter.match(request.path, method=request.method)
                route = self._handlers[endpoint]
                error_body, extra_headers = route.error_body, route.headers
                _check_path_and_query(request, params)
                request.environ[_BODY_FIELDS] = route.body_fields
                response = to_response(route.handler(request, **params))
        except Exception as exc:  # noqa: BLE001 - the one place every error becomes a response
            response = self._error_response(exc, request, request_id, error_body)
        return self._finish(request, response, request_id, extra_headers)

    def _finish(self, request: flask.Request, response: flask.Response, request_id: str,
                extra_headers: dict[str, str]) -> flask.Response:
        response.headers.update(extra_headers)
        response.headers["X-Request-Id"] = request_id
        self._add_cors(request, response)
        if bodies.left_unread(request):
            # The rest of the body is never read; the connection cannot carry another request, so it closes.
            response.headers["Connection"] = "close"
        # Nothing reads the body after the answer: functions-framework would read all that is left into memory.
        bodies.never_read_rest(request)
        return response

    def _framework_error(self, exc: HTTPException) -> flask.Response:
        request = flask.request._get_current_object()
        request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex
        with logs.request_scope(request_id, logs.trace_id_of(request.headers)):
            response = self._error_response(exc, request, request_id, self._unmatched_error_body(request.path))
            return self._finish(request, response, request_id, {})

    def _unmatched_error_body(self, path: str) -> ErrorBody:
        """The error body for a request no route matched: the v1 shape on a v1 path, whichever function answers.

        The gateway sends every path it does not list to the legacy function, whose routes answer in the
        original shape; a mistyped ``/api/v1/...`` path still belongs to the v1 API and its clients.
        """
        return v1_error_body if path == V1_PREFIX or path.startswith(V1_PREFIX + "/") else self.error_body

    def _preflight(self, adapter: Any, request: flask.Request) -> flask.Response:
        allowed = adapter.allowed_methods(request.path)
        if not allowed:
            raise errors.NotFound(f"no route for {request.path}")
        response = flask.Response(status=204)
        response.headers["Access-Control-Allow-Methods"] = ", ".join(sorted(set(allowed) | {"OPTIONS"}))
        requested = request.headers.get("Access-Control-Request-Headers")
        response.headers["Access-Control-Allow-Headers"] = requested or "Content-Type, Authorization, X-User-Id"
        response.headers["Access-Control-Max-Age"] = "86400"
        return response

    def _error_response(self, exc: Exception, request: flask.Request, request_id: str,
                        error_body: ErrorBody) -> flask.Response:
        error = _as_app_error(exc, request)
        if error.status in _AUDITED_REFUSALS:  # rate limits are logged where they are counted (common/ratelimit.py)
            audit.log_refusal(_AUDITED_REFUSALS[error.status], error.status, code=error.code, method=request.method,
                              path=request.path)
        if error.status == 500:
            log.exception("%s %s failed (request %s)", request.method, request.path, request_id,
                          exc_info=exc)
        elif error.status > 500:
            # A backend or provider that is down or refused: expected, and its traceback says nothing new.
            log.warning("%s %s: %s %s (request %s)", request.method, request.path, error.status, error.message,
                        request_id)
        response = json_response(error_body(error, request_id), error.status)
        if isinstance(error, errors.MethodNotAllowed) and error.allowed:
            response.headers["Allow"] = ", ".join(error.allowed)
        if isinstance(error, errors.RateLimited):
            response.headers["Retry-After"] = str(error.retry_after)
        return response

    def _add_cors(self, request: flask.Request, response: flask.Response) -> None:
        origin = request.headers.get("Origin")
        allowed = self.cors_origins()
        if "*" in allowed:
            response.headers["Access-Control-Allow-Origin"] = "*"
        elif origin and origin in allowed:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers.add("Vary", "Origin")
        response.headers["Access-Control-Expose-Headers"] = ("X-Request-Id, Deprecation, Link, Content-Disposition, "
                                                             "X-Result-Rows, X-Result-Truncated")


class _Route(NamedTuple):
    handler: Handler
    error_body: ErrorBody
    headers: dict[str, str]
    body_fields: frozenset[str] | None


def _configured_cors_origins() -> tuple[str, ...]:
    from common import bootstrap

    return bootstrap.context().settings.cors_origins


def _as_app_error(exc: Exception, request: flask.Request) -> errors.AppError:
    if isinstance(exc, errors.AppError):
        return exc
    if isinstance(exc, RoutingNotFound):
        return errors.NotFound(f"no route for {request.method} {request.path}")
    if isinstance(exc, RoutingMethodNotAllowed):
        allowed = tuple(sorted(set(exc.valid_methods or ()) - {"HEAD", "OPTIONS"}))
        return errors.MethodNotAllowed(f"{request.method} is not allowed on {request.path}", allowed=allowed)
    if isinstance(exc, RequestRedirect):
        return errors.NotFound(f"no route for {request.path}")
    if isinstance(exc, HTTPException) and exc.code and exc.code < 500:
        status_class = {413: errors.PayloadTooLarge, 415: errors.UnsupportedMediaType}.get(exc.code, errors.BadRequest)
        return status_class(exc.description or exc.name)
    return errors.AppError("internal error")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> flask.Response:
    """Serialise ``body`` as compact UTF-8 JSON, keeping key order."""
    try:
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=_json_default).encode()
    except UnicodeEncodeError:  # a lone surrogate is not UTF-8; escaped (\ud800) it is valid JSON
        payload = json.dumps(body, ensure_ascii=True, separators=(",", ":"), default=_json_default).encode()
    return flask.Response(payload, status=status, mimetype="application/json", headers=headers)


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def to_response(result: Any) -> flask.Response:
    """Turn a handler's return value (Response, body, or (body, status)) into a Response."""
    if isinstance(result, flask.Response):
        return result
    if isinstance(result, tuple):
        body, status = result
        return json_response(body, status)
    return json_response(result)


def json_body(request: flask.Request, *, required: bool = True) -> dict:
    """Return the request's JSON object body, whatever its Content-Type (as the original API accepted).

    At most MAX_REQUEST_BYTES (413 before reading when Content-Length says more, and while reading a chunked
    body), nested at most ``bodies.MAX_JSON_DEPTH`` deep, every string valid text: else 400.
    """
    raw = bodies.read_body(request, _max_request_bytes())
    if not raw.strip():
        if required:
            raise errors.BadRequest("a JSON object body is required")
        return {}
    body = bodies.parse_json(raw)
    if not isinstance(body, dict):
        raise errors.BadRequest("the JSON body must be an object")
    accepted = request.environ.get(_BODY_FIELDS)
    if accepted is not None:
        bodies.refuse_unknown_fields(body, accepted)
    return body


def _max_request_bytes() -> int:
    from common import bootstrap

    return bootstrap.context().settings.max_request_bytes


def _check_path_and_query(request: flask.Request, params: dict[str, Any]) -> None:
    """404 for a path parameter no resource can be named by; 400 for a query argument that is not text."""
    for value in params.values():
        if isinstance(value, str) and not bodies.path_value_allowed(value):
            raise errors.NotFound(f"no route for {request.method} {request.path}")
    bodies.check_fields(request.args.items(multi=True), "query parameter")


def int_arg(request: flask.Request, name: str, default: int, *, minimum: int | None = None,
            maximum: int | None = None) -> int:
    """Read an integer query parameter, with bounds, as a 400 when malformed."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise errors.BadRequest(f"query parameter {name!r} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise errors.BadRequest(f"query parameter {name!r} must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise errors.BadRequest(f"query parameter {name!r} must be at most {maximum}")
    return value
