"""The OpenAPI document covers every v1 route of every function, exactly, and is a valid OpenAPI 3 document.

Routes come from the functions as deployed: each function's app is created through functions-framework (as the
emulator does) and its module-level ``router`` lists its rules. A route with no operation in
common/openapi.yaml fails one test, an operation with no route fails another.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from werkzeug.test import Client

from common import bootstrap
from common.config import Settings
from common.gateway import route_table
from common.openapi import load_openapi, rule_to_path
from local_emulator.server import GatewayDispatcher, load_function_apps
from tests.function_routers import router_of

V1_PREFIX = "/api/v1"
# Functions with v1 routes. legacy (the original API), agents (/tasks/*, Cloud Tasks) and cleanup (the
# scheduler's target) have none; health's "/" and "/health" are the original API's and fall outside the prefix.
V1_FUNCTIONS = {"charts", "datasets", "health", "llm", "postgres", "prompts", "queries", "sessions"}
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
# The one non-2xx answer that is not an Error: readiness reports which backends failed, in its own shape.
NON_ERROR_BODIES = {("/api/v1/health/ready", "get", "503")}

Operation = tuple[str, str]  # (OpenAPI path, upper-case method)


@pytest.fixture(scope="module")
def function_apps() -> dict[str, Any]:
    return load_function_apps()


@pytest.fixture(scope="module")
def code_operations(function_apps) -> dict[Operation, str]:
    """Every (path, method) of a v1 route, and the function that serves it."""
    operations: dict[Operation, str] = {}
    for name, app in function_apps.items():
        for rule, methods in router_of(app).rules():
            if rule == V1_PREFIX or rule.startswith(V1_PREFIX + "/"):
                for method in methods:
                    operations[(rule_to_path(rule), method)] = name
    return operations


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return load_openapi()


def _spec_operations(document: dict[str, Any]) -> set[Operation]:
    return {(path, method.upper()) for path, item in document["paths"].items() for method in item
            if method in HTTP_METHODS}


def _describe(operations: set[Operation], owners: dict[Operation, str] | None = None) -> str:
    return "\n".join(f"  {method} {path}" + (f" (function {owners[(path, method)]})" if owners else "")
                     for path, method in sorted(operations))


def test_the_routes_are_found_in_every_v1_function(code_operations):
    # Guards the comparison below: a collection that found nothing would make both directions pass.
    assert set(code_operations.values()) == V1_FUNCTIONS
    assert ("/api/v1/datasets/{domain}/{name}", "GET") in code_operations
    assert ("/api/v1/openapi.json", "GET") in code_operations


def test_every_v1_route_has_a_spec_entry(code_operations, document):
    missing = set(code_operations) - _spec_operations(document)
    assert not missing, "route without spec entry (add it to common/openapi.yaml):\n" + \
        _describe(missing, code_operations)


def test_every_spec_entry_has_a_route(code_operations, document):
    extra = _spec_operations(document) - set(code_operations)
    assert not extra, "spec entry without route (remove it from common/openapi.yaml, or add the route):\n" + \
        _describe(extra)


def test_the_gateway_sends_every_v1_route_to_the_function_that_serves_it(code_operations):
    table = route_table()
    for (path, method), function in sorted(code_operations.items()):
        sample = re.sub(r"\{[^}]+\}", "x", path)
        assert table.resolve(sample) == function, f"{method} {path}"


@pytest.mark.parametrize(("rule", "path"), [
    ("/api/v1/datasets", "/api/v1/datasets"),
    ("/api/v1/datasets/<domain>/<path:name>", "/api/v1/datasets/{domain}/{name}"),
    ("/api/v1/items/<int:item_id>/parts/<any(a, b):part>", "/api/v1/items/{item_id}/parts/{part}"),
    ("/api/v1/openapi.json", "/api/v1/openapi.json"),
])
def test_rule_to_path(rule, path):
    assert rule_to_path(rule) == path


def test_the_document_is_valid_openapi_3(document):
    from openapi_spec_validator import validate

    assert document["openapi"] == "3.0.3"
    assert document["info"]["title"] == "ConvoInsight API"
    validate(document)


def test_every_ref_resolves_and_nothing_is_null(document):
    # A null usually means a YAML slip: an unquoted comma in a {flow: mapping} splits a description into a key.
    refs, nulls = [], []
    _walk(document, "", refs, nulls)
    assert not nulls, f"null values (quote the text?): {nulls}"
    unresolved = [ref for ref in refs if _resolve_pointer(document, ref) is None]
    assert not unresolved, unresolved


def test_every_path_parameter_is_declared(document):
    for path, item in document["paths"].items():
        in_template = set(re.findall(r"\{([^}]+)\}", path))
        for method, operation in _operations(item):
            declared = [_deref(document, parameter) for parameter in
                        [*item.get("parameters", []), *operation.get("parameters", [])]]
            in_path = {parameter["name"] for parameter in declared if parameter["in"] == "path"}
            assert in_path == in_template, f"{method.upper()} {path}: path parameters {sorted(in_path)}"
            assert all(parameter.get("required") is True for parameter in declared if parameter["in"] == "path")


def test_every_path_parameter_refuses_what_the_router_refuses(document):
    # The router answers 404 for a path parameter with a control character (common.bodies): a generated
    # client or a fuzzer must not take such a value for a valid one.
    for path, item in document["paths"].items():
        for method, operation in _operations(item):
            for parameter in [*item.get("parameters", []), *operation.get("parameters", [])]:
                parameter = _deref(document, parameter)
                if parameter["in"] != "path":
                    continue
                for value in ("a\nb", "a\x01b", "\x7f"):
                    assert not _accepts(parameter["schema"], value), \
                        f"{method.upper()} {path}: {parameter['name']} allows {value!r}"


def test_the_documented_request_bounds_are_the_enforced_ones(document):
    from common.bodies import MAX_JSON_DEPTH
    from common.config import SETTINGS

    description = document["info"]["description"]
    max_request_bytes = next(setting.default for setting in SETTINGS if setting.name == "max_request_bytes")
    assert f"nested at most {MAX_JSON_DEPTH} levels" in description
    assert max_request_bytes == 1024 * 1024 and "MAX_REQUEST_BYTES (1 MiB by" in description


def test_the_event_stream_documents_each_events_data(document):
    from common.services.pipeline import events

    media = document["paths"]["/api/v1/queries/{query_id}/events"]["get"]["responses"]["200"]["content"]
    stream = media["text/event-stream"]
    assert set(stream["x-events"]) == {"progress", "answer_delta", "answer_restart", "end", "reconnect"}
    frames = "".join([f"retry: {events.RECONNECT_MS}\n\n",
                      events._event("progress", events.event_id(3), {"status": "running"}),
                      events._event("answer_delta", events.event_id(3, 1), {"text": "North "}),
                      events._event("answer_restart", events.event_id(3, 2), {}),
                      ": ping\n\n", events._event("end", events.event_id(4, 2), {"status": "succeeded"})])
    assert re.fullmatch(stream["schema"]["pattern"], frames)
    assert not re.fullmatch(stream["schema"]["pattern"], "event: other\nid: 1\ndata: {}\n\n")


def test_every_operation_has_an_id_a_success_and_the_error_shape(document):
    operation_ids = []
    for path, item in document["paths"].items():
        for method, operation in _operations(item):
            where = f"{method.upper()} {path}"
            assert operation.get("operationId"), f"{where} has no operationId"
            operation_ids.append(operation["operationId"])
            statuses = set(operation["responses"])
            assert any(status.startswith("2") for status in statuses), f"{where} has no 2xx response"
            if operation.get("security") != []:
                assert "401" in statuses, f"{where} needs a caller but documents no 401"
            for status, response in operation["responses"].items():
                if status[0] in "45" and (path, method, status) not in NON_ERROR_BODIES:
                    schema = _deref(document, response)["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, f"{where} {status}"
    duplicates = sorted({name for name in operation_ids if operation_ids.count(name) > 1})
    assert not duplicates, f"operationIds used twice: {duplicates}"


def test_the_error_schema_is_the_one_error_body(document):
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    assert error["properties"]["error"]["required"] == ["code", "message", "details"]


def test_the_health_function_serves_the_document(function_apps, tmp_path):
    bootstrap.use(bootstrap.build(Settings.from_env({}, data_dir=str(tmp_path / "data"))))
    try:
        client = Client(GatewayDispatcher(function_apps, route_table()))
        response = client.get("/api/v1/openapi.json")
        body = json.loads(response.get_data())
    finally:
        bootstrap.use(None)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert body["openapi"] == "3.0.3"
    assert body == json.loads(json.dumps(load_openapi()))
    assert "/api/v1/openapi.json" in body["paths"]


def _accepts(schema: dict[str, Any], value: str) -> bool:
    if "enum" in schema:
        return value in schema["enum"]
    return "pattern" not in schema or re.search(schema["pattern"], value) is not None


def _operations(item: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(method, operation) for method, operation in item.items() if method in HTTP_METHODS]


def _walk(node: Any, where: str, refs: list[str], nulls: list[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                refs.append(value)
            elif value is None:
                nulls.append(f"{where}/{key}")
            _walk(value, f"{where}/{key}", refs, nulls)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _walk(value, f"{where}/{index}", refs, nulls)


def _resolve_pointer(document: dict[str, Any], ref: str) -> Any:
    if not ref.startswith("#/"):
        return None
    target: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(target, dict) or part not in target:
            return None
        target = target[part]
    return target


def _deref(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = _resolve_pointer(document, node["$ref"])
    return node


def _json_body_fields(document: dict[str, Any], operation: dict[str, Any]) -> set[str] | None:
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" not in content:
        return None
    return _properties(document, content["application/json"]["schema"])


def _properties(document: dict[str, Any], schema: dict[str, Any]) -> set[str]:
    schema = _deref(document, schema)
    names = set(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        names |= _properties(document, part)
    return names


def test_every_json_body_route_accepts_exactly_the_documented_fields(function_apps, document):
    # json_body refuses a field the route did not declare (issue 10): the declaration and the document must agree,
    # or a documented field is refused or an undocumented one accepted.
    checked = 0
    for name, app in function_apps.items():
        for (rule, method), declared in router_of(app).body_fields().items():
            if not (rule == V1_PREFIX or rule.startswith(V1_PREFIX + "/")):
                continue
            operation = document["paths"][rule_to_path(rule)][method.lower()]
            documented = _json_body_fields(document, operation)
            where = f"{method} {rule} (function {name})"
            if documented is None:
                assert declared is None, f"{where} declares body fields but documents no JSON body"
                continue
            assert declared is not None, f"{where} takes a JSON body but declares no body_fields"
            assert set(declared) == documented, f"{where}: declared {sorted(declared)}, documented {sorted(documented)}"
            checked += 1
    assert checked >= 12  # guards the loop: every v1 JSON body route was compared
