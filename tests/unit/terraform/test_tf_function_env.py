"""common/function_env.yaml is what Terraform deploys: each name it lists is filled, each secret it lists mounted."""

from __future__ import annotations

import json
import pathlib
import re

import yaml

from common.config import SETTINGS
from tests.unit.terraform import tf_binary
from tests.unit.terraform.tf_rules import MODULES, ROOT, STACK, blocks, locals_of, parse_file

ENV_FILE = ROOT / "common" / "function_env.yaml"
# Read by a library, not by common/config.py: LiteLLM's own switch.
LIBRARY_SETTINGS = {"LITELLM_LOCAL_MODEL_COST_MAP"}


def _env_file() -> dict:
    return yaml.safe_load(ENV_FILE.read_text(encoding="utf-8"))


def _stack_function_env() -> str:
    return locals_of(parse_file(STACK / "main.tf"))["function_env"]


def _names_filled_by_terraform() -> set[str]:
    """The environment variable names the stack assigns itself in local.function_env."""
    return set(re.findall(r"\b([A-Z][A-Z0-9_]*) = ", _stack_function_env()))


def _function_names() -> set[str]:
    return {main.parent.name for main in (ROOT / "functions").glob("*/main.py")}


def test_the_stack_deploys_the_files_constants_first_and_fills_exactly_the_names_it_lists() -> None:
    stack = locals_of(parse_file(STACK / "main.tf"))
    assert stack["function_env_file"] == '${yamldecode(file("${local.repo_root}/common/function_env.yaml"))}'
    assert _stack_function_env().startswith("${merge(local.function_env_file.constant, {")
    listed = _env_file()
    assert _names_filled_by_terraform() == set(listed["terraform"]) | set(listed["optional"])
    # A constant Terraform also assigned would be overridden without anyone noticing in the file.
    assert not _names_filled_by_terraform() & set(listed["constant"])
    functions = dict(blocks(parse_file(STACK / "main.tf"), "module"))["functions"]
    assert functions["environment_variables"] == "${local.function_env}"


def test_every_listed_name_is_a_setting_and_every_constant_a_string() -> None:
    listed = _env_file()
    settings = {setting.env for setting in SETTINGS} | LIBRARY_SETTINGS
    secrets = {name for names in listed["secrets"].values() for name in names}
    names = [*listed["constant"], *listed["terraform"], *listed["optional"], *secrets]
    assert sorted(set(names) - settings) == []
    assert len(names) - len(secrets) == len(set(names) - secrets), "a name listed twice"
    # An unquoted True or 1 in YAML is no string: yamldecode gives Terraform a bool or a number.
    assert {name: value for name, value in listed["constant"].items() if not isinstance(value, str)} == {}


def test_each_function_mounts_exactly_the_secrets_the_file_lists() -> None:
    profiles = locals_of(parse_file(MODULES / "function_access" / "main.tf"))["profiles"]
    made = dict(blocks(parse_file(MODULES / "secrets" / "variables.tf"), "variable"))["secrets"]["default"]
    mounted = {function: sorted(made[key]["env_var"] for key in profiles.get(function, {}).get("secrets", []))
               for function in _function_names()}
    assert {function: sorted(names) for function, names in _env_file()["secrets"].items()} == mounted


def test_terraform_decodes_the_constants_to_the_same_strings(tmp_path: pathlib.Path) -> None:
    root = (f'output "constant" {{\n  value = yamldecode(file({json.dumps(str(ENV_FILE))})).constant\n}}\n'
            f'output "terraform" {{\n  value = yamldecode(file({json.dumps(str(ENV_FILE))})).terraform\n}}\n')
    result = tf_binary.render(tmp_path, root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert tf_binary.output(tmp_path, "constant") == _env_file()["constant"]
    assert tf_binary.output(tmp_path, "terraform") == _env_file()["terraform"]
