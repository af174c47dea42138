"""Terraform IAM: no broad or public grants, allowed roles only, own service accounts, invokers, secret access."""

from __future__ import annotations

import json
import pathlib

import pytest

from tests.unit.terraform.tf_rules import (
    MODULES,
    STACK,
    TERRAFORM,
    all_docs,
    bad_grants,
    blocks,
    locals_of,
    parse_file,
    resources,
    shared_service_account_problems,
    tf_files,
    unexpected_roles,
)


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


def test_invokers_are_service_accounts_only() -> None:
    invokers = locals_of(parse_file(STACK / "main.tf"))["invoker_members"]
    assert "allUsers" not in invokers and "allAuthenticatedUsers" not in invokers
    function_main = parse_file(MODULES / "function" / "main.tf")
    invoker = [body for rtype, _, body in resources(function_main) if rtype == "google_cloud_run_service_iam_member"]
    assert invoker and invoker[0]["role"] == "roles/run.invoker" and invoker[0]["member"] == "${each.value}"
    validations = dict(blocks(parse_file(MODULES / "function" / "variables.tf"), "variable"))["invoker_members"]
    assert "allUsers" in json.dumps(validations.get("validation")), "invoker_members must refuse allUsers"


def test_every_secret_named_in_an_access_profile_exists() -> None:
    profiles = locals_of(parse_file(MODULES / "function_access" / "main.tf"))["profiles"]
    secrets = dict(blocks(parse_file(MODULES / "secrets" / "variables.tf"), "variable"))["secrets"]["default"]
    for function, profile in profiles.items():
        for secret in profile.get("secrets", []):
            assert secret in secrets, f"{function} names unknown secret {secret}"
    # Only the functions that call an LLM or handle keys (stored ones, or a request's while it runs) read keys,
    # and cleanup, which re-encrypts stored secrets after a key rotation (issue 12) and so needs the Fernet keys
    # alone; only those that sign or check the API's own links read the URL-signing secret.
    readers = {function for function, profile in profiles.items()
               if set(profile.get("secrets", [])) - {"url_signing_secret"}}
    assert readers <= {"agents", "llm", "postgres", "legacy", "queries", "cleanup"}, readers
    assert profiles["cleanup"]["secrets"] == ["fernet_keys"]
    assert "secrets" not in profiles.get("health", {})
