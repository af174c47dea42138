"""Terraform layout: the tree exists, descriptions, module calls and interfaces, the stack and its thin environments."""

from __future__ import annotations

import pathlib

import pytest

from tests.unit.terraform.tf_rules import (
    MODULES,
    STACK,
    TERRAFORM,
    config_dirs,
    environments,
    interface_problems,
    locals_of,
    missing_module_files,
    module_dirs,
    modules_not_called,
    parse_file,
    parse_hcl,
    tf_files,
    thin_environment_problems,
    top_level_modules,
    undocumented,
)


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


def test_functions_are_enumerated_from_the_source_tree() -> None:
    local = locals_of(parse_file(STACK / "main.tf"))
    assert "fileset(" in local["function_names"] and '"*/main.py"' in local["function_names"]
    assert '"${local.repo_root}/functions"' in local["function_names"]


@pytest.mark.parametrize("env", environments(), ids=lambda p: p.name)
def test_each_environment_is_a_thin_call_of_the_stack(env: pathlib.Path) -> None:
    assert thin_environment_problems(env) == []


@pytest.mark.parametrize("env", environments(), ids=lambda p: p.name)
def test_environment_has_the_expected_files(env: pathlib.Path) -> None:
    for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "backend.tf", "backend.hcl.example",
                 "terraform.tfvars.example"):
        assert (env / name).is_file(), f"{env.name}/{name} is missing"
    required = parse_file(env / "versions.tf")["terraform"][0]["required_providers"][0]
    for provider in ("google", "google-beta", "archive", "random"):
        assert required.get(provider, {}).get("version"), f"{env.name}: provider {provider} is not pinned"


@pytest.mark.parametrize("env", environments(), ids=lambda p: p.name)
def test_state_lives_in_an_active_partial_gcs_backend(env: pathlib.Path) -> None:
    backends = [backend for block in parse_file(env / "backend.tf").get("terraform", [])
                for backend in block.get("backend", [])]
    assert len(backends) == 1 and list(backends[0]) == ["gcs"], f"{env.name}: one active backend \"gcs\" block"
    # Partial: the bucket is per project, so it and the prefix come from backend.hcl at init, never from here.
    assert backends[0]["gcs"] == {}, f"{env.name}: backend settings belong in backend.hcl"
    example = parse_hcl((env / "backend.hcl.example").read_text(encoding="utf-8"))
    assert set(example) == {"bucket", "prefix"} and example["prefix"].endswith(f"/{env.name}"), example
    ignored = (TERRAFORM / ".gitignore").read_text(encoding="utf-8").split()
    assert "backend.hcl" in ignored
