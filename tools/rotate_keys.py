"""``make rotate-keys``: re-encrypt every stored secret under the first ENCRYPTION_KEYS key, now.

Runs against the metadata store the settings name (METADATA_BACKEND, DATABASE_URL or Firestore's project,
COLLECTION_PREFIX), as the functions would. Without ENCRYPTION_KEYS it uses the keys the local emulator keeps
in DATA_DIR, when there are some (it never makes new ones: a fresh key could open nothing). Prints the report
of ``common.services.key_rotation.reencrypt`` as JSON and exits 1 while anything remains under an older key
or opens with no key, so the old key may be dropped only after a run that exits 0. ``--dry-run`` changes
nothing and answers the same question.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("NO_GCE_CHECK", "true")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.rotate_keys", description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true",
                        help="count what would be re-encrypted, change nothing (exits 1 if anything would be)")
    parser.add_argument("--data-dir", default=None,
                        help="the local emulator's data directory (default: DATA_DIR, else ./.local_data)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from common import bootstrap, errors
    from common.config import Settings
    from common.services.key_rotation import reencrypt

    try:
        overrides = {"data_dir": os.path.abspath(args.data_dir)} if args.data_dir else {}
        settings = _with_emulator_keys(Settings.from_env(**overrides))
        if not settings.encryption_keys:
            print("ENCRYPTION_KEYS is not set (and DATA_DIR holds no emulator keys): nothing to re-encrypt with",
                  file=sys.stderr)
            return 2
        context = bootstrap.Context(settings)  # no request instance: only the two parts needed, built here
        report = reencrypt(context.metadata, context.encryptor, dry_run=args.dry_run, audit_to=context)
    except errors.AppError as exc:
        print(f"cannot re-encrypt: {exc.message}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2))
    left = report["totals"]["remaining_under_old_keys"] + report["totals"]["undecryptable"]
    return 1 if left else 0


def _with_emulator_keys(settings):
    """The settings with the local emulator's kept keys when ENCRYPTION_KEYS is unset and DATA_DIR has them."""
    from local_emulator.secrets import FILE_NAME, with_local_secrets

    if settings.encryption_keys or not os.path.exists(os.path.join(settings.data_dir, FILE_NAME)):
        return settings
    return with_local_secrets(settings)


if __name__ == "__main__":
    sys.exit(main())
