"""Terraform function packaging: a function's zip file list, rendered by terraform from a throw-away tree."""

from __future__ import annotations

import pathlib
import textwrap

from tests.unit.terraform.tf_binary import output, render
from tests.unit.terraform.tf_rules import MODULES


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
    result = render(workdir, _source_files_root(repo, "datasets"))
    assert result.returncode == 0, result.stdout + result.stderr
    files = output(workdir, "files")
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
    result = render(workdir, _source_files_root(repo, "health"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert output(workdir, "files")["requirements.txt"] == str(repo / "functions/health/requirements.txt")


def test_function_zip_refuses_a_function_without_main(tmp_path: pathlib.Path) -> None:
    repo = tmp_path / "repo"
    _write(repo, "functions/ghost/README.md", "common/__init__.py", "prompts/router.yaml", "requirements.txt")
    workdir = tmp_path / "tf"
    workdir.mkdir()
    result = render(workdir, _source_files_root(repo, "ghost"))
    assert result.returncode != 0
    assert "functions/ghost/main.py does not exist" in result.stdout + result.stderr
