"""The Makefile: `check` is the default goal, README.md documents every target, `make token` names its user."""

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAKEFILE = (ROOT / "Makefile").read_text(encoding="utf-8")
# Rule heads `name:` (not `name :=` assignments, not recipe lines); internal ones start with `$(` or `.` or are paths.
TARGETS = [name for name in re.findall(r"^([^\s#=:]+)\s*:(?![=:])", MAKEFILE, re.M)
           if not name.startswith(("$(", ".")) and "/" not in name]


def make(*args: str, **env: str) -> subprocess.CompletedProcess:
    """Runs make in the repository, never (re)building `install`, with no inherited make flags."""
    environ = {key: value for key, value in os.environ.items() if key not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
    return subprocess.run(["make", "--no-print-directory", "-o", "install", *args], cwd=ROOT,
                          env={**environ, **env}, capture_output=True, text=True, timeout=60)


def test_check_is_the_default_goal():
    database = make("-rRpq", "help").stdout  # prints make's database, runs nothing
    assert re.search(r"^\.DEFAULT_GOAL := check$", database, re.M)
    assert {"check", "help", "token", "test-unit", "lint"} <= set(TARGETS)


def test_readme_mentions_every_target():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    target_list = readme[readme.index("Other targets:"):].split("\n\n")[0]
    mentioned = set(re.findall(r"\bmake ([\w-]+)", readme)) | set(re.findall(r"`(?:make )?([\w-]+)[^`]*`", target_list))
    assert not set(TARGETS) - mentioned, f"targets missing from README.md: {sorted(set(TARGETS) - mentioned)}"


def test_token_user_is_not_the_login_name():
    assert "'alice'" in make("-n", "token", "TOKEN_USER=alice", USER="bob").stdout
    default = make("-n", "token", USER="bob").stdout
    assert "'dev'" in default and "bob" not in default


def test_token_without_secret_is_one_clear_line():
    result = make("token", AUTH_TOKEN_SECRET="")
    assert result.returncode == 2
    assert "set AUTH_TOKEN_SECRET (32+ characters) first" in result.stderr and "Traceback" not in result.stderr
