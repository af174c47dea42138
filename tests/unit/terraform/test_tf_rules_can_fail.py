"""The Terraform rules can fail: each rule of tf_rules is fed a broken snippet and reports it."""

from __future__ import annotations

import pathlib
import textwrap

from tests.unit.terraform.tf_rules import (
    bad_grants,
    effective_default,
    interface_problems,
    modules_not_called,
    parse_hcl,
    shared_service_account_problems,
    thin_environment_problems,
    undocumented,
    unexpected_roles,
)


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
