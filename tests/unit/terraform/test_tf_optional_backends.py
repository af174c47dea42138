"""The optional pieces: Memorystore + its VPC connector (modules/redis, on in prod) and Cloud SQL for the metadata
(modules/cloud_sql, off everywhere): provisioned, their APIs enabled, wired into every function, credentials only
as secrets, and a Redis URL without a way to reach it refused."""

from __future__ import annotations

import json
import pathlib
import re

import pytest

from tests.unit.terraform import tf_binary
from tests.unit.terraform.tf_rules import (
    ENVIRONMENTS,
    MODULES,
    STACK,
    blocks,
    effective_default,
    environments,
    locals_of,
    parse_file,
    resources,
)


def _stack_call(name: str) -> dict:
    return dict(blocks(parse_file(STACK / "main.tf"), "module"))[name]


def _stack_locals() -> dict:
    return locals_of(parse_file(STACK / "main.tf"))


def _resources(module: str) -> dict[str, dict]:
    return {rtype: body for path in sorted((MODULES / module).glob("*.tf"))
            for rtype, _, body in resources(parse_file(path))}


def _outputs(module: str) -> dict[str, dict]:
    return dict(blocks(parse_file(MODULES / module / "outputs.tf"), "output"))


def _setting_env_names() -> set[str]:
    from common.config import SETTINGS

    return {setting.env for setting in SETTINGS}


# --- which environment turns what on ------------------------------------------------------------------------------


def test_prod_provisions_redis_and_dev_does_not() -> None:
    assert effective_default(ENVIRONMENTS / "prod", "redis_enabled") is True
    assert effective_default(ENVIRONMENTS / "dev", "redis_enabled") is False


@pytest.mark.parametrize("env", environments(), ids=lambda p: p.name)
def test_cloud_sql_is_off_by_default(env: pathlib.Path) -> None:
    assert effective_default(env, "cloud_sql_enabled") is False


def test_each_optional_module_is_called_once_behind_its_switch() -> None:
    assert _stack_call("redis")["count"] == "${var.redis_enabled ? 1 : 0}"
    assert _stack_call("cloud_sql")["count"] == "${var.cloud_sql_enabled ? 1 : 0}"
    for name in ("redis", "cloud_sql"):
        assert _stack_call(name)["depends_on"] == ["${module.project_services}"], name


def test_their_apis_are_enabled_only_when_they_are_on() -> None:
    optional = _stack_call("project_services")["optional_services"]
    redis_part = re.search(r"var\.redis_enabled \? \[([^\]]*)\]", optional)
    sql_part = re.search(r"var\.cloud_sql_enabled \? \[([^\]]*)\]", optional)
    assert redis_part and "redis.googleapis.com" in redis_part.group(1)
    assert "vpcaccess.googleapis.com" in redis_part.group(1)
    assert sql_part and "sqladmin.googleapis.com" in sql_part.group(1)
    enabling = _resources("project_services")["google_project_service"]
    assert "var.optional_services" in enabling["for_each"]


# --- Redis -----------------------------------------------------------------------------------------------------


def test_redis_module_provisions_the_instance_and_the_connector() -> None:
    made = _resources("redis")
    instance, connector = made["google_redis_instance"], made["google_vpc_access_connector"]
    assert instance["tier"] == "${var.tier}" and instance["memory_size_gb"] == "${var.memory_size_gb}"
    assert "${var.network}" in instance["authorized_network"] and connector["network"] == "${var.network}"
    assert instance["auth_enabled"] is True  # so the URL carries the AUTH string, and goes as a secret
    variables = dict(blocks(parse_file(MODULES / "redis" / "variables.tf"), "variable"))
    assert variables["tier"]["default"] == "BASIC" and "STANDARD_HA" in json.dumps(variables["tier"]["validation"])
    outputs = _outputs("redis")
    assert outputs["vpc_connector"]["value"] == "${google_vpc_access_connector.this.id}"
    assert outputs["redis_url"]["sensitive"] is True
    assert outputs["redis_url"]["value"].startswith("redis://:${google_redis_instance.this.auth_string}@")
    assert outputs["redis_url"]["value"].endswith("/0")


def test_every_function_gets_the_connector_and_the_redis_url_when_redis_is_on() -> None:
    functions = _stack_call("functions")
    assert functions["for_each"] == "${local.function_names}" and functions["vpc_connector"] == "${local.vpc_connector}"
    connector = _stack_locals()["vpc_connector"]
    assert connector == "${var.redis_enabled ? module.redis[0].vpc_connector : var.vpc_connector}"
    service_config = _resources("function")["google_cloudfunctions2_function"]["service_config"][0]
    assert service_config["vpc_connector"] == "${var.vpc_connector}"
    # The URL holds the AUTH string: a secret of every function, never a plain environment variable.
    secrets = _stack_locals()["connection_secrets"]
    assert '"REDIS_URL"' in secrets and "var.redis_enabled" in secrets
    assert "redis_url = module.redis[0].redis_url" in _stack_locals()["connection_secret_values"]
    assert _stack_call("connection_secrets")["values"] == "${local.connection_secret_values}"
    assert 'var.redis_enabled ? ["redis_url"] : []' in _stack_locals()["function_grants"]
    assert functions["access"] == "${local.function_grants[each.key]}"
    assert "module.redis" not in _stack_locals()["function_env"]
    assert "var.redis_enabled" in _stack_locals()["function_env"]  # CACHE_BACKEND=redis
    assert {"REDIS_URL", "CACHE_BACKEND"} <= _setting_env_names()


def _cache_preconditions() -> list[dict]:
    return dict(blocks(parse_file(STACK / "outputs.tf"), "output"))["cache"]["precondition"]


def test_a_redis_url_without_a_connector_is_refused_by_a_precondition() -> None:
    conditions = " ".join(check["condition"] for check in _cache_preconditions())
    assert "var.redis_url" in conditions and "var.vpc_connector" in conditions and "var.redis_enabled" in conditions


@pytest.mark.parametrize(("redis_enabled", "redis_url", "vpc_connector", "accepted"), [
    (False, "", None, True),
    (False, "redis://10.0.0.3:6379/0", "projects/p/locations/r/connectors/c", True),
    (True, "", None, True),
    (False, "redis://10.0.0.3:6379/0", None, False),  # no way to reach it
    (True, "redis://10.0.0.3:6379/0", None, False),  # the module supplies the URL
    (True, "", "projects/p/locations/r/connectors/c", False),  # and the connector
])
def test_the_cache_preconditions_accept_and_refuse_the_right_inputs(
        tmp_path: pathlib.Path, redis_enabled: bool, redis_url: str, vpc_connector: str | None, accepted: bool) -> None:
    checks = "".join(
        "  precondition {\n"
        f"    condition     = {check['condition'][2:-1]}\n"
        f"    error_message = {json.dumps(check['error_message'])}\n"
        "  }\n"
        for check in _cache_preconditions()
    )
    root = (
        f'variable "redis_enabled" {{\n  type = bool\n  default = {json.dumps(redis_enabled)}\n}}\n'
        f'variable "redis_url" {{\n  type = string\n  default = {json.dumps(redis_url)}\n}}\n'
        f'variable "vpc_connector" {{\n  type = string\n  default = {json.dumps(vpc_connector)}\n}}\n'
        f'output "cache" {{\n  value = "checked"\n{checks}}}\n'
    )
    result = tf_binary.render(tmp_path, root)
    assert (result.returncode == 0) is accepted, result.stdout + result.stderr


# --- Cloud SQL -------------------------------------------------------------------------------------------------


def test_cloud_sql_module_provisions_instance_database_and_a_user_with_a_generated_password() -> None:
    made = _resources("cloud_sql")
    instance = made["google_sql_database_instance"]
    assert instance["database_version"] == "${var.database_version}"
    assert instance["deletion_protection"] == "${var.deletion_protection}"
    variables = dict(blocks(parse_file(MODULES / "cloud_sql" / "variables.tf"), "variable"))
    assert variables["deletion_protection"]["default"] is True
    assert variables["database_version"]["default"].startswith("POSTGRES_")
    ip = instance["settings"][0]["ip_configuration"][0]
    assert ip.get("authorized_networks") is None and ip["ssl_mode"] == "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"
    assert made["google_sql_database"]["instance"] == "${google_sql_database_instance.this.name}"
    assert made["google_sql_user"]["password"] == "${random_password.user.result}"
    assert made["random_password"]["special"] is False and made["random_password"]["length"] >= 32  # sits in a URL
    url = _outputs("cloud_sql")["database_url"]
    assert url["sensitive"] is True
    assert url["value"].startswith("postgresql+pg8000://${google_sql_user.this.name}:${random_password.user.result}@/")


def test_database_url_reaches_the_functions_only_as_a_secret() -> None:
    # common/config.py takes the password inside DATABASE_URL only (no separate setting): the whole URL is the secret.
    assert "DATABASE_URL" in _setting_env_names()
    assert not [name for name in _setting_env_names() if "PASSWORD" in name]
    secrets = _stack_locals()["connection_secrets"]
    assert '"DATABASE_URL"' in secrets and "var.cloud_sql_enabled" in secrets
    assert "database_url = module.cloud_sql[0].database_url" in _stack_locals()["connection_secret_values"]
    assert '["database_url"]' in _stack_locals()["function_grants"]
    env = _stack_locals()["function_env"]
    assert "DATABASE_URL" not in env and "database_url" not in env
    assert 'var.cloud_sql_enabled ? "sql" : "firestore"' in env  # METADATA_BACKEND
    assert "CLOUD_SQL_INSTANCE = module.cloud_sql[0].connection_name" in env
    assert {"METADATA_BACKEND", "CLOUD_SQL_INSTANCE"} <= _setting_env_names()


def test_each_metadata_function_may_connect_to_that_instance_alone() -> None:
    grants = [body for rtype, _, body in resources(parse_file(MODULES / "function" / "main.tf"))
              if rtype == "google_project_iam_member" and body["role"] == "roles/cloudsql.client"]
    assert len(grants) == 1
    client = grants[0]
    assert client["count"] == "${var.cloud_sql_instance == null ? 0 : 1}"
    assert client["member"] == "${local.member}"
    assert "instances/${var.cloud_sql_instance}" in client["condition"][0]["expression"]
    passed = _stack_call("functions")["cloud_sql_instance"]
    assert "module.cloud_sql[*].instance_name" in passed and "firestore_role != null" in passed
    function = _resources("function")["google_cloudfunctions2_function"]
    assert "${google_project_iam_member.cloud_sql_client}" in function["depends_on"]  # granted before it starts
