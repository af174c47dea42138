"""Start the real services the tests need, run a command with their addresses, stop what was started.

    python tests/services.py run -- pytest tests/

Postgres and Redis are used where they already listen, else started (and installed with apt-get on a bare
Debian machine). The Firestore emulator (from the machine image), the GCS emulator and the Cloud Tasks
emulator (from PyPI) are started on free ports. Only what this script started is stopped. A service this
machine cannot provide (no Firestore emulator installed) is listed in SERVICES_UNAVAILABLE so the strict CI
mode can tell "not provided here" from "failed to start".
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOG_DIR = os.path.join(ROOT, ".services")
started: list[subprocess.Popen] = []


def log(message: str) -> None:
    print(f"[services] {message}", file=sys.stderr, flush=True)


def listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not become ready within {timeout:.0f} s (logs in {LOG_DIR})")


def spawn(name: str, argv: list[str], env: dict | None = None) -> subprocess.Popen:
    os.makedirs(LOG_DIR, exist_ok=True)
    out = open(os.path.join(LOG_DIR, f"{name}.log"), "wb")
    process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                               env={**os.environ, **(env or {})})
    started.append(process)
    return process


def apt_install(*packages: str) -> None:
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise RuntimeError(f"cannot install {packages}: need root and apt-get")
    log(f"installing {' '.join(packages)} with apt-get")
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", *packages], check=True,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def ensure_postgres() -> str:
    if not listening(5432):
        if not glob.glob("/etc/postgresql/*/main"):
            apt_install("postgresql")
        version = sorted(os.listdir("/etc/postgresql"))[-1]
        log(f"starting PostgreSQL {version}")
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=False)
        wait_for(lambda: listening(5432), "PostgreSQL")
    return postgres_url()


def postgres_url() -> str:
    import pg8000.native

    for user, password in (("postgres", None), ("postgres", "postgres")):
        try:
            pg8000.native.Connection(user, host="127.0.0.1", database="test", password=password).close()
            auth = f"{user}:{password}@" if password else f"{user}@"
            return f"postgresql+pg8000://{auth}127.0.0.1:5432/test"
        except Exception:  # noqa: BLE001 - try the next way in
            continue
    # A fresh Debian cluster: password auth over TCP and no `test` database. Set both up as the postgres user.
    log("preparing the postgres role and the test database")
    psql = ["runuser", "-u", "postgres", "--", "psql", "-v", "ON_ERROR_STOP=0", "-c"]
    subprocess.run([*psql, "ALTER USER postgres PASSWORD 'postgres'"], check=True)
    subprocess.run([*psql, "CREATE DATABASE test"], check=False)
    return "postgresql+pg8000://postgres:postgres@127.0.0.1:5432/test"


def ensure_redis() -> str:
    if not listening(6379):
        if shutil.which("redis-server") is None:
            apt_install("redis-server")
        log("starting Redis")
        spawn("redis", ["redis-server", "--bind", "127.0.0.1", "--port", "6379", "--save", "",
                        "--appendonly", "no"])
        wait_for(lambda: listening(6379), "Redis")
    return "redis://127.0.0.1:6379/15"


def firestore_launcher() -> str | None:
    candidates = glob.glob("/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud_firestore_emulator")
    candidates += glob.glob("/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/*/cloud_firestore_emulator")
    return candidates[0] if candidates and shutil.which("java") else None


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def ensure_firestore() -> str | None:
    launcher = firestore_launcher()
    if launcher is None:
        log("no Firestore emulator on this machine: its contract tests will skip")
        return None
    port = free_port()
    log(f"starting the Firestore emulator on {port}")
    spawn("firestore", [launcher, "start", "--host=127.0.0.1", f"--port={port}"])
    wait_for(lambda: http_ok(f"http://127.0.0.1:{port}/"), "Firestore emulator", timeout=90)
    return f"127.0.0.1:{port}"


def ensure_gcs() -> str:
    port = free_port()
    binary = os.path.join(os.path.dirname(sys.executable), "gcp-storage-emulator")
    log(f"starting the GCS emulator on {port}")
    spawn("gcs", [binary, "start", "--host=127.0.0.1", f"--port={port}", "--in-memory"])
    wait_for(lambda: listening(port), "GCS emulator")
    return f"http://127.0.0.1:{port}"


# gcloud-tasks-emulator listens on every interface ([::]:port) whatever it is told; this launcher makes it
# listen on loopback only. Installed with --no-deps (see the Makefile): its protobuf<5 pin is wrong.
_TASKS_EMULATOR_LAUNCHER = """
import grpc
_server = grpc.server
def _loopback_server(*args, **kwargs):
    server = _server(*args, **kwargs)
    add_port = server.add_insecure_port
    server.add_insecure_port = lambda address: add_port(address.replace("[::]", "127.0.0.1"))
    return server
grpc.server = _loopback_server
from gcloud_tasks_emulator.__main__ import main
main()
"""


def ensure_tasks() -> str | None:
    if importlib.util.find_spec("gcloud_tasks_emulator") is None:
        log("no Cloud Tasks emulator (`make install` installs it): its contract tests will skip")
        return None
    port = free_port()
    log(f"starting the Cloud Tasks emulator on {port}")
    spawn("tasks", [sys.executable, "-c", _TASKS_EMULATOR_LAUNCHER, "start", f"--port={port}"])
    wait_for(lambda: listening(port), "Cloud Tasks emulator")
    return f"127.0.0.1:{port}"


def stop_started() -> None:
    for process in reversed(started):
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    for process in started:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def service_env() -> dict[str, str]:
    env = {"NO_GCE_CHECK": "true", "GOOGLE_CLOUD_PROJECT": "test-proj", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
           "TEST_POSTGRES_URL": ensure_postgres(), "TEST_REDIS_URL": ensure_redis(),
           "STORAGE_EMULATOR_HOST": ensure_gcs()}
    tasks = ensure_tasks()
    if tasks:
        env["TASKS_EMULATOR_HOST"] = tasks
    firestore = ensure_firestore()
    if firestore:
        env["FIRESTORE_EMULATOR_HOST"] = firestore
    else:
        env["SERVICES_UNAVAILABLE"] = "FIRESTORE_EMULATOR_HOST"
    return env


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "run" or "--" not in argv:
        print(__doc__, file=sys.stderr)
        return 2
    command = argv[argv.index("--") + 1:]
    # A terminated run still stops what it started: turn SIGTERM into an exception that `finally` sees.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        env = service_env()
        for name, value in sorted(env.items()):
            log(f"{name}={value}")
        return subprocess.run(command, env={**os.environ, **env}).returncode
    finally:
        stop_started()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
