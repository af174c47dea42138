"""The fuzzed emulator: on 127.0.0.1, its own data directory, dev identities, nothing that may leave loopback.

``FUZZ_PROFILE`` (``ci``: the short subset ``make test`` runs; ``long``: ``make fuzz``) sets how many cases
each operation gets (``FUZZ_EXAMPLES`` overrides it); ``FUZZ_SEED`` makes a run repeatable (the same seed,
the same requests).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROFILES = {"ci": {"v1_examples": 90, "legacy_examples": 220}, "long": {"v1_examples": 300, "legacy_examples": 1500}}
PROFILE = dict(PROFILES[os.environ.get("FUZZ_PROFILE", "ci")])
if os.environ.get("FUZZ_EXAMPLES"):  # one run with more (or fewer) cases per operation than its profile
    PROFILE = {key: int(os.environ["FUZZ_EXAMPLES"]) for key in PROFILE}
SEED = int(os.environ.get("FUZZ_SEED", "8"))
USER = "fuzzer"
LOOPBACK_ONLY = "127.0.0.0/8,::1"
# Every setting that could send a request elsewhere points at loopback; the rest keeps a case fast.
EMULATOR_ENV = {
    "AUTH_MODE": "dev", "ENVIRONMENT": "local", "ADMIN_USERS": USER, "RATE_LIMITS": "",
    "STORAGE_BACKEND": "local", "METADATA_BACKEND": "sql", "DATABASE_URL": "", "CACHE_BACKEND": "memory",
    "TASKS_BACKEND": "local", "PG_ALLOWED_HOSTS": LOOPBACK_ONLY, "LLM_ALLOWED_HOSTS": LOOPBACK_ONLY,
    "LLM_DEFAULT_MODEL": "", "LLM_DEFAULT_API_KEYS": "", "LLM_API_BASE": "", "LLM_TIMEOUT_SECONDS": "2",
    "LLM_MAX_RETRIES": "0", "QUERY_WAIT_SECONDS": "2", "SQL_TIMEOUT_SECONDS": "5", "LOG_LEVEL": "WARNING",
    # An HTTP client that honours proxies would hand any other host to a port where nothing listens.
    "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1,localhost,::1",
    "NO_GCE_CHECK": "true", "LITELLM_LOCAL_MODEL_COST_MAP": "True", "GOOGLE_CLOUD_PROJECT": "fuzz",
}
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "SYSTEMROOT")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def emulator(tmp_path_factory):
    """The base URL of an emulator started for this run (stopped, by its pid, at the end)."""
    port = _free_port()
    data_dir = tmp_path_factory.mktemp("fuzz-data")
    env = {key: os.environ[key] for key in _INHERITED if key in os.environ} | EMULATOR_ENV
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    log = open(tmp_path_factory.mktemp("fuzz-log") / "emulator.log", "w+b")
    process = subprocess.Popen([sys.executable, "-m", "tests.fuzz.serve", "--host", "127.0.0.1", "--port", str(port),
                                "--data-dir", str(data_dir), "--cleanup-interval", "0", "--no-warm-up"],
                               cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/v1/health/live", timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                log.seek(0)
                pytest.fail("the emulator did not start:\n" + log.read().decode(errors="replace")[-3000:])
            time.sleep(0.2)
    yield base
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()
