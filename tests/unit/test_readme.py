"""The README is what a newcomer has: every emulator option and every file it names exist as it says."""

from __future__ import annotations

import re
from pathlib import Path

from local_emulator.__main__ import build_parser

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_emulator_option_is_in_the_readme():
    options = {option for action in build_parser()._actions for option in action.option_strings
               if option.startswith("--") and option != "--help"}
    assert {"--port", "--no-warm-up"} <= options  # the parser was read
    missing = sorted(option for option in options if f"`{option}`" not in README)
    assert not missing, f"emulator options missing from README.md: {missing}"


def test_every_linked_file_exists():
    linked = set(re.findall(r"\]\(([^)#:]+)\)", README))
    assert "docs/LEGACY_API.md" in linked
    missing = sorted(path for path in linked if not (ROOT / path).exists())
    assert not missing, f"README.md links to files that do not exist: {missing}"


def test_every_markdown_file_named_in_code_comments_exists():
    # Code cites the original API's description (LEGACY_API.md §6 D12): the file must be in the repository.
    named = set()
    for path in [*ROOT.glob("common/**/*.py"), *ROOT.glob("functions/**/*.py"), *ROOT.glob("common/*.yaml")]:
        named |= set(re.findall(r"\b([A-Z][A-Z_]+\.md)\b", path.read_text(encoding="utf-8")))
    assert "LEGACY_API.md" in named
    found = {path.name for path in ROOT.glob("**/*.md") if ".venv" not in path.parts}
    assert not named - found, f"named but not in the repository: {sorted(named - found)}"
