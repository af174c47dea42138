"""The Terraform house rules, checked offline: parsing helpers, the rules (each returns a list of problems), constants.

No provider can be downloaded here, so ``terraform init/validate/plan`` cannot run. Instead every ``.tf`` file is
parsed with python-hcl2 and checked by the rules below; ``tf_binary`` renders the provider-free modules with a real
``terraform`` binary when one is on PATH. The ``test_tf_rules_can_fail`` tests feed each rule a broken snippet.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import pathlib
import re
from collections.abc import Iterator
from typing import Any

import hcl2

ROOT = pathlib.Path(__file__).resolve().parents[3]
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
    "roles/cloudsql.client",
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


def config_dirs() -> list[pathlib.Path]:
    """Every directory holding .tf files: modules and environments."""
    return sorted({p.parent for p in tf_files()})


def dir_docs(directory: pathlib.Path) -> list[dict[str, Any]]:
    return [parse_file(p) for p in sorted(directory.glob("*.tf"))]


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
