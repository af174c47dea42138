"""The pipeline from the outside: a local emulator process on loopback, and the v1 HTTP API a user calls."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TERMINAL = {"succeeded", "failed", "cancelled"}
# The harness measures the pipeline, so the emulator runs with nothing that would answer for it or refuse it:
# no answer cache (a repeated question would be free), no rate limit (45 questions exceed the default 30/min),
# and only local backends in its own temporary DATA_DIR, whatever the caller's environment points at.
EMULATOR_SETTINGS = {
    "AUTH_MODE": "dev", "ANSWER_CACHE_TTL_SECONDS": "0", "RATE_LIMITS": "", "STORAGE_BACKEND": "local",
    "METADATA_BACKEND": "sql", "DATABASE_URL": "", "CLOUD_SQL_INSTANCE": "", "CACHE_BACKEND": "memory",
    "TASKS_BACKEND": "local", "COLLECTION_PREFIX": "", "DEV_USER": "", "NO_GCE_CHECK": "true",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LOG_LEVEL": "WARNING",
}


class HarnessError(RuntimeError):
    """The harness could not run (the emulator did not start, an upload was refused)."""


class Emulator:
    """``python -m local_emulator`` on a free loopback port with its own temporary DATA_DIR; a context manager."""

    def __init__(self, start_timeout: float = 90.0, settings: dict[str, str] | None = None):
        self.start_timeout = start_timeout
        self.settings = {**EMULATOR_SETTINGS, **(settings or {})}
        self.workdir = tempfile.TemporaryDirectory(prefix="convo-eval-")
        self.log_path = Path(self.workdir.name) / "emulator.log"
        self.process: subprocess.Popen | None = None
        self.url = ""

    def __enter__(self) -> Emulator:
        port = _free_port()
        data_dir = Path(self.workdir.name) / "data"
        env = {**os.environ, **self.settings, "DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)}
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "local_emulator", "--host", "127.0.0.1", "--port", str(port),
                 "--data-dir", str(data_dir), "--cleanup-interval", "0"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{port}"
        self._wait_until_up()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.workdir.cleanup()

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        api = Api(self.url, user="probe")
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise HarnessError(f"the emulator exited ({self.process.returncode}):\n{self.log_tail()}")
            try:
                if api.request("GET", "/api/v1/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise HarnessError(f"the emulator did not answer within {self.start_timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        """The last lines the emulator wrote."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class Api:
    """The v1 API as one user sees it (``AUTH_MODE=dev``: ``X-User-Id``); loopback calls never use a proxy."""

    def __init__(self, base_url: str, user: str | None = None, timeout: float = 60.0):
        self.base_url = base_url.rstrip("/")
        self.user = user or f"eval-{secrets.token_hex(4)}"  # a fresh tenant: nothing of an earlier run is seen
        self.timeout = timeout
        host = urllib.parse.urlsplit(self.base_url).hostname or ""
        handlers = [urllib.request.ProxyHandler({})] if host in {"127.0.0.1", "localhost", "::1"} else []
        self._opener = urllib.request.build_opener(*handlers)

    def request(self, method: str, path: str, body: bytes | None = None,
                content_type: str | None = None) -> tuple[int, Any]:
        """Send one request; return the status and the decoded JSON body (or the text)."""
        headers = {"X-User-Id": self.user, **({"Content-Type": content_type} if content_type else {})}
        request = urllib.request.Request(self.base_url + path, data=body, method=method, headers=headers)
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        try:
            return status, json.loads(raw or b"null")
        except ValueError:
            return status, raw.decode("utf-8", "replace")

    def upload(self, domain: str, path: Path) -> None:
        """Upload one file into ``domain``; raise HarnessError when it is refused."""
        boundary = f"----convo-eval-{secrets.token_hex(8)}"
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="domain"\r\n\r\n{domain}\r\n'.encode(),
                 f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
                 f"Content-Type: application/octet-stream\r\n\r\n".encode(), path.read_bytes(),
                 f"\r\n--{boundary}--\r\n".encode()]
        status, body = self.request("POST", "/api/v1/datasets", b"".join(parts),
                                    f"multipart/form-data; boundary={boundary}")
        if status != 201:
            raise HarnessError(f"uploading {path.name} into {domain} failed ({status}): {body}")

    def ask(self, domain: str, prompt: str, session_id: str | None) -> tuple[int, Any]:
        """Submit a question; return the status and body (202 with ``query_id`` when accepted)."""
        fields = {"domain": domain, "prompt": prompt, **({"session_id": session_id} if session_id else {})}
        return self.request("POST", "/api/v1/queries", json.dumps(fields).encode(), "application/json")

    def wait(self, query_id: str, timeout: float, poll: float = 0.05) -> dict[str, Any]:
        """Poll the job view until the job ends; past ``timeout``, cancel it and return it as timed out."""
        deadline = time.monotonic() + timeout
        view: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status, body = self.request("GET", f"/api/v1/queries/{urllib.parse.quote(query_id)}")
            if status == 200 and isinstance(body, dict):
                view = body
                if view.get("status") in TERMINAL:
                    return view
            time.sleep(poll)
        self.request("DELETE", f"/api/v1/queries/{urllib.parse.quote(query_id)}")  # so it cannot slow the next one
        return {**view, "status": "timed out", "error": {"message": f"not finished after {timeout:.0f} s"}}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
