"""``python -m tools.tf_validate``: check terraform/ against the pinned provider schemas; exit 1 on any problem."""

from __future__ import annotations

import argparse
import pathlib
import sys
from collections import Counter

from tools.tf_validate.hcl_check import Problem, check_declaration
from tools.tf_validate.hcl_source import declarations, provider_requirements, tf_files
from tools.tf_validate.pins import PROVIDERS_FILE, load_pins
from tools.tf_validate.schema_source import SchemaUnavailable, default_cache_dir, load_schema
from tools.tf_validate.version_pins import check_requirements


def main(argv: list[str] | None = None) -> int:
    """Run the check and print each problem, then a one-line summary; 0 clean, 1 problems, 2 no schema."""
    parser = argparse.ArgumentParser(prog="python -m tools.tf_validate", description=__doc__)
    parser.add_argument("root", nargs="?", default="terraform", type=pathlib.Path,
                        help="directory whose .tf files are checked (default: terraform)")
    parser.add_argument("--providers", default=PROVIDERS_FILE, type=pathlib.Path,
                        help="the pinned provider schemas (default: tools/tf_validate/providers.yaml)")
    parser.add_argument("--cache-dir", default=None, type=pathlib.Path,
                        help="where reduced schemas are kept (default: $XDG_CACHE_HOME/convoinsight/tf-schema)")
    args = parser.parse_args(argv)

    pins = load_pins(args.providers)
    cache_dir = args.cache_dir or default_cache_dir()
    try:
        schemas = {name: load_schema(pin, cache_dir) for name, pin in pins.items()}
    except SchemaUnavailable as error:
        print(f"tf-validate: {error}", file=sys.stderr)
        return 2

    problems: list[Problem] = []
    checked: Counter[str] = Counter()
    files = tf_files(args.root)
    for path in files:
        text = path.read_text(encoding="utf-8")
        shown = str(path)
        for declaration in declarations(text, shown):
            checked[declaration.kind] += 1
            problems.extend(check_declaration(declaration, schemas))
        problems.extend(check_requirements(provider_requirements(text, shown), pins))

    for problem in sorted(problems, key=lambda found: (found.file, found.line or 0)):
        print(problem)
    against = ", ".join(pin.label for pin in pins.values())
    outcome = f"{len(problems)} problem{'s' * (len(problems) != 1)}" if problems else "no problems"
    print(f"tf-validate: {checked['resource']} resources and {checked['data']} data sources in {len(files)} files "
          f"checked against {against}: {outcome}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
