"""`terraform apply` works the first time, and what it deploys is complete: every mounted secret has a first
version, URL_SIGNING_SECRET reaches the functions that sign or check links, the default model is set, tasks go to
the agents service's run.app URL, and the functions that send result downloads have the memory for them."""

from __future__ import annotations

import ast
import base64
import math
import pathlib
import re

import pytest

from tests.unit.terraform import tf_binary
from tests.unit.terraform.tf_rules import (
    ENVIRONMENTS,
    MODULES,
    ROOT,
    STACK,
    blocks,
    effective_default,
    environments,
    locals_of,
    parse_file,
    parse_hcl,
    resources,
    strings,
    without_descriptions,
)

SECRETS = MODULES / "secrets"


def _secrets() -> dict:
    return dict(blocks(parse_file(SECRETS / "variables.tf"), "variable"))["secrets"]["default"]


def _profiles() -> dict:
    return locals_of(parse_file(MODULES / "function_access" / "main.tf"))["profiles"]


def _stack_call(name: str) -> dict:
    return dict(blocks(parse_file(STACK / "main.tf"), "module"))[name]


def _env_value(name: str) -> str | None:
    """The expression the stack gives environment variable ``name`` of every function (local.function_env)."""
    found = re.search(rf"\b{name} = ([^,{{}}]+)", locals_of(parse_file(STACK / "main.tf"))["function_env"])
    return found and found.group(1).strip()


# --- 1. every mounted secret has a first version --------------------------------------------------------


def test_every_secret_gets_its_first_version_before_a_function_mounts_it() -> None:
    doc = parse_file(SECRETS / "main.tf")
    versions = [body for rtype, _, body in resources(doc) if rtype == "google_secret_manager_secret_version"]
    assert len(versions) == 1, "one google_secret_manager_secret_version per secret (for_each = var.secrets)"
    assert versions[0]["for_each"] == "${var.secrets}"
    assert versions[0]["secret"] == "${google_secret_manager_secret.this[each.key].id}"
    # The functions read the secrets from this output only; it waits for the versions.
    output = dict(blocks(parse_file(SECRETS / "outputs.tf"), "output"))["secrets"]
    assert output.get("depends_on") == ["${google_secret_manager_secret_version.first}"]
    # Both calls of modules/secrets: the deployment's keys, and the connection strings of Redis and Cloud SQL.
    assert _stack_call("connection_secrets")["source"] == _stack_call("secrets")["source"] == "../secrets"
    assert _stack_call("functions")["secrets"] == "${merge(module.secrets.secrets, module.connection_secrets.secrets)}"
    function = parse_file(MODULES / "function" / "main.tf")
    mounts = [body["service_config"][0]["dynamic"] for rtype, _, body in resources(function)
              if rtype == "google_cloudfunctions2_function"]
    assert mounts[0][0]["secret_environment_variables"]["for_each"] == "${local.used_secrets}"
    assert "key => var.secrets[key]" in locals_of(function)["used_secrets"]  # only secrets of that output


def test_each_first_value_is_generated_or_given_by_the_operator() -> None:
    given = _stack_call("secrets")["values"]
    for key, secret in _secrets().items():
        if secret.get("generate") is None:
            assert key in given, f"secret {key} is neither generated nor passed to modules/secrets as values"
        else:
            assert secret["generate"] in {"fernet_key", "hmac_secret"}, key
    assert given == {"default_llm_api_key": "${var.llm_default_api_keys}"}
    for directory in (STACK, *environments()):
        variable = dict(blocks(parse_file(directory / "variables.tf"), "variable"))["llm_default_api_keys"]
        assert variable.get("sensitive") is True and "default" not in variable, directory.name
    assert dict(blocks(parse_file(SECRETS / "variables.tf"), "variable"))["values"]["sensitive"] is True


def test_generated_secrets_are_long_enough_and_declared() -> None:
    doc = parse_file(SECRETS / "main.tf")
    generators = {(rtype, name): body for rtype, name, body in resources(doc) if rtype.startswith("random_")}
    assert generators[("random_bytes", "fernet_key")]["length"] == 32  # a Fernet key is exactly 32 bytes
    hmac = generators[("random_password", "hmac_secret")]
    assert hmac["length"] >= 32 and hmac["special"] is False  # URL_SIGNING_SECRET needs 32+; no commas
    assert parse_file(SECRETS / "main.tf")["terraform"][0]["required_providers"][0]["random"]


def test_generated_fernet_key_is_a_key_cryptography_accepts(tmp_path: pathlib.Path) -> None:
    from cryptography.fernet import Fernet

    first_values = locals_of(parse_file(SECRETS / "main.tf"))["first_values"]
    conversion = re.search(r"replace\(replace\(bytes\.base64, .*?\), \"/\", \"_\"\)", first_values)
    assert conversion, first_values
    raw = bytes([0xFB, 0xFF, 0xBF] * 10 + [0xFE, 0x01])  # standard base64 of these holds both + and /
    standard = base64.b64encode(raw).decode()
    assert "+" in standard and "/" in standard
    expression = conversion.group(0).replace("bytes.base64", f'"{standard}"')
    result = tf_binary.render(tmp_path, f'output "key" {{\n  value = {expression}\n}}\n')
    assert result.returncode == 0, result.stdout + result.stderr
    key = tf_binary.output(tmp_path, "key")
    # URL-safe alphabet only (Python's decoder would take + and / too; the Fernet spec and other readers do not).
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}=", key) and base64.urlsafe_b64decode(key) == raw
    fernet = Fernet(key)
    assert fernet.decrypt(fernet.encrypt(b"x")) == b"x"


# --- 2. URL_SIGNING_SECRET where the code signs or checks links ---------------------------------------------

# Source that signs or checks the API's own links: the setting itself, or a chart store URL.
_SIGNS = re.compile(r"url_signing_secret|\.charts\.(?:url|open_signed)\(")


def _module_file(name: str) -> pathlib.Path | None:
    path = ROOT.joinpath(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported(path: pathlib.Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _signing_functions() -> dict[str, list[str]]:
    """Function name -> files that sign or check links: its own, or common.services modules it imports (lazily
    too). The chart store itself is left out: every function can build it, only some ask it for a URL. A
    function reaching only pipeline/answers.py (chart links of an answer) is left out too: on GCS the bucket
    signs those; the one that writes answers (agents) gets the secret as the fallback."""
    found = {}
    for main in sorted((ROOT / "functions").glob("*/main.py")):
        seen: set[pathlib.Path] = set()
        todo = sorted(main.parent.glob("*.py"))
        while todo:
            path = todo.pop()
            if path in seen:
                continue
            seen.add(path)
            todo += [file for name in _imported(path) if name.startswith("common.services.")
                     if (file := _module_file(name)) is not None]
        hits = [str(path.relative_to(ROOT)) for path in sorted(seen) if _SIGNS.search(path.read_text("utf-8"))]
        if any(not hit.startswith("common/services/pipeline/answers.py") for hit in hits):
            found[main.parent.name] = hits
    return found


def test_url_signing_secret_is_mounted_where_the_code_signs_or_checks_links() -> None:
    secret = [key for key, value in _secrets().items() if value["env_var"] == "URL_SIGNING_SECRET"]
    assert secret == ["url_signing_secret"]
    mounted = {name for name, profile in _profiles().items() if "url_signing_secret" in profile.get("secrets", [])}
    signing = _signing_functions()
    assert {"charts", "datasets", "legacy", "queries"} <= set(signing), signing  # the finder still finds
    # agents writes answers whose chart links fall back to URL_SIGNING_SECRET when the bucket cannot sign.
    assert mounted == set(signing) | {"agents"}, (mounted, signing)


# --- 5. the default model ----------------------------------------------------------------------------------


def test_functions_that_ask_questions_get_the_default_model_and_key() -> None:
    assert _env_value("LLM_DEFAULT_MODEL") == "var.llm_default_model"
    # One environment for every function (so queries, agents, legacy and llm all build it), passed whole.
    assert _stack_call("functions")["environment_variables"] == "${local.function_env}"
    for directory in (STACK, *environments()):
        variable = dict(blocks(parse_file(directory / "variables.tf"), "variable"))["llm_default_model"]
        assert "default" not in variable, f"{directory.name}: the default model has no default; the operator names it"
    for env_dir in environments():
        example = parse_hcl((env_dir / "terraform.tfvars.example").read_text(encoding="utf-8"))
        assert example["llm_default_model"], env_dir.name
    profiles = _profiles()
    for function in ("agents", "legacy", "llm"):
        assert "default_llm_api_key" in profiles[function]["secrets"], function


# --- 6. the Cloud Tasks target -----------------------------------------------------------------------------


def test_tasks_go_to_the_agents_run_app_url_which_is_also_the_audience() -> None:
    stack = parse_file(STACK / "main.tf")
    local = locals_of(stack)
    assert _env_value("TASKS_TARGET_URL") == "module.tasks.target_url"
    assert _stack_call("tasks")["target_url"] == "${local.agents_url}"
    assert local["agents_url"] == "https://${local.agents_service}-${data.google_project.this.number}.${var.region}.run.app"
    projects = [entry["google_project"]["this"] for entry in stack.get("data", []) if "google_project" in entry]
    assert projects == [{"project_id": "${var.project_id}"}]
    # The service name is the function module's deployed name for "agents".
    deployed = locals_of(parse_file(MODULES / "function" / "main.tf"))["deployed_name"]
    assert deployed == "${var.name}-${var.environment}"
    assert local["agents_service"] == "agents-${local.environment}"
    # The task's OIDC audience is the same URL (common/tasks reads TASKS_TARGET_URL for both).
    outputs = dict(blocks(parse_file(MODULES / "tasks" / "outputs.tf"), "output"))
    assert outputs["target_url"]["value"] == "${var.target_url}"
    # No cloudfunctions.net URL is built anywhere: agents takes internal traffic only.
    for path in MODULES.rglob("*.tf"):
        built = [text for text in strings(without_descriptions(parse_file(path))) if "cloudfunctions.net" in text]
        assert not built, path


def test_tasks_target_validation_accepts_only_a_deterministic_run_app_url() -> None:
    variable = dict(blocks(parse_file(MODULES / "tasks" / "variables.tf"), "variable"))["target_url"]
    condition = variable["validation"][0]["condition"]
    pattern = re.search(r'regex\("(.*)", var\.target_url\)', condition).group(1).replace("\\\\", "\\")
    assert re.fullmatch(pattern, "https://agents-prod-123456789012.europe-west1.run.app")
    assert not re.fullmatch(pattern, "https://europe-west1-my-project.cloudfunctions.net/agents-prod")
    assert not re.fullmatch(pattern, f"https://agents-{'x' * 60}-123456789012.europe-west1.run.app")


# --- the public base URL and result-download memory ----------------------------------------------------------


def test_public_base_url_is_a_variable_not_the_gateway_host() -> None:
    assert _env_value("PUBLIC_BASE_URL") == "var.public_base_url"
    variable = dict(blocks(parse_file(STACK / "variables.tf"), "variable"))["public_base_url"]
    assert variable["default"] == "" and variable["nullable"] is False  # empty: X-Forwarded-Host


def _memory_mib(text: str) -> int:
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", text).groups()
    return int(number) * (1024 if unit == "Gi" else 1)


# The serving process itself (Python, Flask, the imported modules, open event streams) beside the downloads.
SERVER_MIB = 512


def _download_mib() -> tuple[int, int]:
    """(MiB one result download may take: DuckDB's limit, its process's headroom, the file; downloads at once)."""
    from common.analysis.sql_engine import PROCESS_HEADROOM_MB
    from common.config import SETTINGS

    default = {setting.name: setting.default for setting in SETTINGS}
    return (default["sql_memory_limit_mb"] + PROCESS_HEADROOM_MB
            + math.ceil(default["result_download_max_bytes"] / 2**20)), default["result_download_concurrency"]


def _download_senders() -> list[str]:
    return sorted(main.parent.name for main in (ROOT / "functions").glob("*/main.py")
                  if "send_result(" in main.read_text(encoding="utf-8"))


def _sizings(env: pathlib.Path) -> list[tuple[str, dict, dict]]:
    defaults = effective_default(env, "function_defaults")
    found = [("stack default", defaults, effective_default(env, "function_overrides"))]
    example = parse_hcl((env / "terraform.tfvars.example").read_text(encoding="utf-8"))
    if "function_overrides" in example:
        found.append(("terraform.tfvars.example", defaults, example["function_overrides"]))
    return found


@pytest.mark.parametrize("env", environments(), ids=lambda p: p.name)
def test_result_downloads_fit_in_the_functions_that_send_them(env: pathlib.Path) -> None:
    per_download, concurrency = _download_mib()
    assert _download_senders() == ["datasets", "queries"], _download_senders()
    for where, defaults, overrides in _sizings(env):
        for function in _download_senders():
            sizing = {**defaults, **overrides.get(function, {})}
            at_once = min(sizing["concurrency"], concurrency)
            need = at_once * per_download + SERVER_MIB
            assert _memory_mib(sizing["memory"]) >= need, f"{env.name} {where}: {function} needs {need} MiB"
            if _memory_mib(sizing["memory"]) > 4096:  # Cloud Run: more than 4 GiB needs 2+ vCPUs
                assert float(sizing.get("cpu") or 0) >= 2, f"{env.name} {where}: {function}"


def test_prod_example_keeps_queries_event_streams_shared() -> None:
    overrides = parse_hcl((ENVIRONMENTS / "prod" / "terraform.tfvars.example").read_text("utf-8"))["function_overrides"]
    assert overrides["queries"]["concurrency"] >= 20 and overrides["queries"]["cpu"] is not None
