"""A Postgres cluster of a test's own, on a free loopback port, that the test may stop and start again.

Made with the server's own initdb and pg_ctl in a temporary directory (never the shared server the other
tests use), with trust authentication for 127.0.0.1. Run as root, the server's tools run as the ``postgres``
OS user (Postgres refuses to run as root), as tests/services.py does.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile

from tests.services import free_port, listening, wait_for


def _server_bin() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


class ThrowawayCluster:
    """``start``, ``stop``; ``port`` and ``user`` to connect with (database ``postgres``, no password)."""

    user = "postgres"

    def __init__(self) -> None:
        self.bin = _server_bin()
        if self.bin is None:
            raise RuntimeError("no Postgres server binaries (initdb, pg_ctl) on this machine")
        self.as_root = os.geteuid() == 0
        self.workdir = tempfile.mkdtemp(prefix="pg-throwaway-")
        self.data = os.path.join(self.workdir, "data")
        self.port = free_port()
        if self.as_root:
            shutil.chown(self.workdir, user="postgres", group="postgres")
        self._run("initdb", "-D", self.data, "-U", self.user, "-A", "trust", "--no-sync", "-E", "UTF8")
        self.start()

    def _run(self, tool: str, *args: str) -> None:
        command = [os.path.join(self.bin, tool), *args]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60,
                       cwd=self.workdir)  # a directory the postgres user may enter

    def start(self) -> None:
        """Start the server and wait until it takes connections."""
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.workdir} -c fsync=off"
        self._run("pg_ctl", "-D", self.data, "-l", os.path.join(self.workdir, "server.log"), "-o", options, "-w",
                  "start")
        wait_for(lambda: listening(self.port), f"the throwaway Postgres on {self.port}", timeout=30)

    def stop(self) -> None:
        """Stop the server (its clients are cut off, new connections refused)."""
        self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")

    def close(self) -> None:
        """Stop the server if it runs, and remove its files."""
        if listening(self.port):
            self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
