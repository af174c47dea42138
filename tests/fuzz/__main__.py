"""Run the fuzzers: ``python -m tests.fuzz [ci|long] [--seed N] [pytest args...]`` (``make fuzz``, ``make fuzz-ci``).

As root where ``unshare`` works, the run (client and emulator) gets a network namespace of its own with only
loopback up, so no request can leave this machine whatever the server is asked to do. Elsewhere it runs as it
is, bound to 127.0.0.1, with every allowed-hosts setting on loopback and the emulator's loopback-only socket
guard (``tests/fuzz/loopback.py``), which it has in the namespace too.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_IN_NAMESPACE = ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "fuzz"]


def network_namespace_available() -> bool:
    """Whether this process may run a command in a network namespace of its own (root, unshare, ip)."""
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        return False
    probe = subprocess.run([*_IN_NAMESPACE, "true"], capture_output=True, timeout=30)
    return probe.returncode == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("profile", nargs="?", default="ci", choices=("ci", "long"),
                        help="ci: the short subset `make test` runs; long: `make fuzz`")
    parser.add_argument("--seed", type=int, default=8, help="the same seed sends the same requests (default 8)")
    args, pytest_args = parser.parse_known_args(argv)
    env = {**os.environ, "FUZZ_PROFILE": args.profile, "FUZZ_SEED": str(args.seed), "PYTHONPATH": ROOT}
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "tests/fuzz", *pytest_args]
    if network_namespace_available():
        command = [*_IN_NAMESPACE, *command]
        print("[fuzz] in a network namespace of its own: loopback only", file=sys.stderr, flush=True)
    else:
        print("[fuzz] no network namespace (needs root and unshare): loopback-bound, with the socket guard",
              file=sys.stderr, flush=True)
    return subprocess.call(command, cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main())
