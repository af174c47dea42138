"""The local emulator, with the loopback guard installed before anything else: ``python -m tests.fuzz.serve``."""

from __future__ import annotations

import sys

from tests.fuzz import loopback

loopback.install()

from local_emulator.__main__ import main  # noqa: E402 - after the guard, so no client is built without it

if __name__ == "__main__":
    main(sys.argv[1:])
