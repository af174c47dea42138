"""Terraform API gateway: built from the routes file; rendered by terraform, it matches common/gateway.py."""

from __future__ import annotations

import json
import pathlib
import re
import textwrap
from typing import Any

import pytest
import yaml

from common.gateway import Route, RouteTable, route_table
from tests.unit.terraform.tf_binary import output, render
from tests.unit.terraform.tf_rules import (
    MODULES,
    ROOT,
    ROUTES_FILE,
    STACK,
    all_docs,
    blocks,
    locals_of,
    parse_file,
    strings,
    without_descriptions,
)


def test_gateway_document_is_built_from_the_routes_file() -> None:
    openapi = locals_of(parse_file(MODULES / "api_gateway" / "openapi" / "main.tf"))
    assert openapi["routes_doc"] == "${yamldecode(file(var.routes_file))}"
    gateway_calls = dict(blocks(parse_file(MODULES / "api_gateway" / "main.tf"), "module"))
    assert gateway_calls["openapi"]["routes_file"] == "${var.routes_file}"
    doc = parse_file(STACK / "main.tf")
    local = locals_of(doc)
    calls = dict(blocks(doc, "module"))
    assert calls["api_gateway"]["routes_file"] == "${local.routes_file}"
    assert calls["functions"]["repo_root"] == "${local.repo_root}"
    # Resolve the two locals the way Terraform does: path.module is the stack's own directory, whichever
    # environment calls it (path.root would be the caller's).
    repo_root = re.fullmatch(r'\$\{abspath\("\$\{path\.module\}/(.*)"\)\}', local["repo_root"]).group(1)
    resolved_root = (STACK / repo_root).resolve()
    assert resolved_root == ROOT, "functions/, common/ and prompts/ are read under local.repo_root"
    routes = local["routes_file"].replace("${local.repo_root}", str(resolved_root))
    assert pathlib.Path(routes).resolve() == ROUTES_FILE.resolve()
    # No v1 path is spelled out in Terraform (the YAML is the only routing table), except the list of
    # health paths that are public.
    for path, doc in all_docs():
        if path == MODULES / "api_gateway" / "openapi" / "variables.tf":
            doc = {"variable": [{k: v} for k, v in blocks(doc, "variable") if k != "public_paths"]}
        assert [text for text in strings(without_descriptions(doc)) if "/api/v1" in text] == [], path


def _openapi_root(backends: dict[str, int]) -> str:
    entries = "\n".join(
        f'    {name} = {{ url = "https://{name}.example.run.app", deadline = {deadline} }}'
        for name, deadline in backends.items()
    )
    return textwrap.dedent("""
        module "openapi" {
          source              = "%s"
          title               = "test"
          firebase_project_id = "fb-proj"
          routes_file         = "%s"
          backends = {
        %s
          }
        }
        output "document" {
          value = module.openapi.document
        }
    """) % (MODULES / "api_gateway" / "openapi", ROUTES_FILE, entries)


@pytest.fixture(scope="module")
def openapi_document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    workdir = tmp_path_factory.mktemp("openapi")
    backends = {name: 30 + index for index, name in enumerate(route_table().functions)}
    result = render(workdir, _openapi_root(backends))
    assert result.returncode == 0, result.stdout + result.stderr
    return {"doc": json.loads(output(workdir, "document")), "deadlines": backends}


def _function_of(operation: dict[str, Any]) -> str:
    address = operation["x-google-backend"]["address"]
    return re.fullmatch(r"https://([a-z_]+)\.example\.run\.app", address).group(1)


def test_every_gateway_path_reaches_the_function_the_local_router_picks(openapi_document: dict) -> None:
    table = route_table()
    paths = openapi_document["doc"]["paths"]
    for path, operations in paths.items():
        sample = path.replace("{rest=**}", "some/thing")
        for method, operation in operations.items():
            assert _function_of(operation) == table.resolve(sample), f"{method.upper()} {path}"
            backend = operation["x-google-backend"]
            assert backend["path_translation"] == "APPEND_PATH_TO_ADDRESS"
            assert backend["deadline"] == openapi_document["deadlines"][_function_of(operation)]
    for route in table.routes:
        assert route.path in paths, route.path
        if not route.exact:
            assert f"{route.path.rstrip('/')}/{{rest=**}}" in paths, route.path


def test_legacy_paths_go_to_the_fallback(openapi_document: dict) -> None:
    paths = openapi_document["doc"]["paths"]
    for path in ("/query", "/datasets/{rest=**}", "/upload_datasets/{rest=**}", "/pg/test", "/validate-key"):
        assert _function_of(paths[path]["post"]) == route_table().fallback, path
    assert "/debug/routes" not in paths  # the original's public debug route stays unreachable


def test_every_route_of_every_routed_function_is_reachable_through_the_gateway(openapi_document: dict) -> None:
    from local_emulator.server import load_function_apps
    from tests.function_routers import router_of

    paths, table = openapi_document["doc"]["paths"], route_table()
    unreachable = []
    for name, app in load_function_apps().items():
        if name not in table.functions:
            continue  # agents (Cloud Tasks) and cleanup (Cloud Scheduler) are called directly, not via the gateway
        for rule, methods in router_of(app).rules():
            sample = re.sub(r"<[^>]+>", "x", rule)
            gateway_path = next((path for path in paths if path == sample or (
                path.endswith("/{rest=**}") and sample.startswith(path.removesuffix("{rest=**}")))), None)
            for method in methods:
                operation = paths.get(gateway_path, {}).get(method.lower())
                if operation is None or _function_of(operation) != name:
                    unreachable.append(f"{method} {rule} ({name})")
    assert unreachable == [], "add these to legacy_paths (modules/api_gateway/openapi) or the routes file"


def test_gateway_requires_firebase_tokens_except_preflight_health_and_signed_charts(openapi_document: dict) -> None:
    doc = openapi_document["doc"]
    firebase = doc["securityDefinitions"]["firebase"]
    assert firebase["x-google-issuer"] == "https://securetoken.google.com/fb-proj"
    assert firebase["x-google-audiences"] == "fb-proj"
    assert firebase["x-google-jwks_uri"].endswith("securetoken@system.gserviceaccount.com")
    public = {"/", "/health", "/api/v1/health", "/api/v1/health/{rest=**}", "/api/v1/openapi.json",
              "/charts/{rest=**}", "/files/{rest=**}"}
    operation_ids = []
    for path, operations in doc["paths"].items():
        assert "options" in operations, path
        assert operations["options"]["security"] == [], path
        for method, operation in operations.items():
            operation_ids.append(operation["operationId"])
            if method != "options" and path not in public:
                assert operation["security"] == [{"firebase": []}], f"{method.upper()} {path}"
            if "{rest=**}" in path:
                assert {"in": "path", "name": "rest", "required": True, "type": "string"} in operation["parameters"]
    assert doc["swagger"] == "2.0"
    assert len(operation_ids) == len(set(operation_ids))


def test_gateway_keeps_the_routes_file_first_match_rule(tmp_path: pathlib.Path) -> None:
    # Overlapping routes: the routes file lets the first match win; the generated document must agree.
    routes = tmp_path / "routes.yaml"
    routes.write_text(textwrap.dedent("""
        routes:
          - {exact: /health, function: health}
          - {prefix: /api/v1/datasets, function: datasets}
          - {prefix: /api/v1/datasets, function: sessions}
          - {exact: /health, function: sessions}
          - {exact: /query, function: queries}
        fallback: legacy
    """), encoding="utf-8")
    raw = yaml.safe_load(routes.read_text(encoding="utf-8"))
    table = RouteTable(
        routes=tuple(Route(path=r.get("exact") or r["prefix"], function=r["function"], exact="exact" in r)
                     for r in raw["routes"]),
        fallback=raw["fallback"],
    )
    workdir = tmp_path / "tf"
    workdir.mkdir()
    root = _openapi_root({name: 30 for name in table.functions}).replace(str(ROUTES_FILE), str(routes))
    result = render(workdir, root)
    assert result.returncode == 0, result.stdout + result.stderr
    paths = json.loads(output(workdir, "document"))["paths"]
    for path, operations in paths.items():
        assert _function_of(operations["get"]) == table.resolve(path.replace("{rest=**}", "x/y")), path
    assert _function_of(paths["/query"]["post"]) == "queries"  # a route beats the legacy list


def test_gateway_refuses_a_route_to_a_function_that_is_not_deployed(tmp_path: pathlib.Path) -> None:
    backends = {name: 30 for name in route_table().functions if name != "datasets"}
    result = render(tmp_path, _openapi_root(backends))
    assert result.returncode != 0
    assert "not deployed" in result.stdout + result.stderr and "datasets" in result.stdout + result.stderr
