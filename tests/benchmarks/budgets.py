"""Worst-case memory of each guarded request class: a hostile request (issue 8's findings) replayed against a
fresh emulator, the server's resident memory sampled while it runs, reported as growth over its start.

Each class runs in its own emulator so a crash or a peak of one cannot hide in another's figure. A request
that kills the server is reported as such (that was the chart renderer's failure before its bound).
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable

from tests.benchmarks.upload import _free_port, _memory_kb

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
USER = {"X-User-Id": "bench"}
SQL_MEMORY_LIMIT_MB = 1024


@dataclasses.dataclass(frozen=True)
class Replay:
    request_class: str
    request: str
    budget: str
    status: str
    seconds: float
    growth_mb: float
    response_mb: float


class Emulator:
    """A fresh emulator of the tree at ``source`` on a free port, with its own data folder."""

    def __init__(self, source: str, workdir: str, *options: str, **settings: str):
        self.port = _free_port()
        env = {**os.environ, "PYTHONPATH": source, "NO_GCE_CHECK": "true", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
               "LOG_LEVEL": "ERROR", "SQL_MEMORY_LIMIT_MB": str(SQL_MEMORY_LIMIT_MB), **settings}
        self.process = subprocess.Popen([sys.executable, "-m", "local_emulator", "--port", str(self.port),
                                         "--data-dir", os.path.join(workdir, "data"), *_quiet(source), *options],
                                        cwd=source, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(300):
            if self._answers():
                return
            time.sleep(0.1)
        raise RuntimeError("the emulator did not start")

    def _answers(self) -> bool:
        try:
            return self.call("GET", "/api/v1/health")[0] == 200
        except OSError:
            return False

    def call(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
             timeout: float = 120) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers={**USER, **(headers or {})})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def rss_mb(self) -> float:
        """Resident memory of the server and every process it started (the SQL engine's query processes)."""
        return sum(_memory_kb(pid, "VmRSS") for pid in _process_tree(self.process.pid)) / 1024

    def close(self) -> None:
        self.process.kill()
        self.process.wait()


def _process_tree(pid: int) -> list[int]:
    pids, pending = [], [pid]
    while pending:
        current = pending.pop()
        pids.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children", encoding="utf-8") as handle:
                    pending += [int(child) for child in handle.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return pids


def _quiet(source: str) -> list[str]:
    """No background warm-up, where the tree has one: the growth measured must be the request's alone."""
    with open(os.path.join(source, "local_emulator", "__main__.py"), encoding="utf-8") as handle:
        return ["--no-warm-up"] if "--no-warm-up" in handle.read() else []


def _json(body: dict) -> tuple[bytes, dict]:
    return json.dumps(body).encode(), {"Content-Type": "application/json"}


def _multipart(domain: str, name: str, content: bytes) -> tuple[bytes, dict]:
    boundary = "benchboundary7f3a"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"domain\"\r\n\r\n{domain}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def measure_request(emulator: Emulator, send: Callable[[], tuple[int, bytes]]) -> tuple[str, float, float, float]:
    """Send one request while sampling the server's RSS; return (status, seconds, peak growth MB, response MB)."""
    start, peak, done = emulator.rss_mb(), [0.0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            try:
                peak[0] = max(peak[0], emulator.rss_mb())
            except (FileNotFoundError, ProcessLookupError, RuntimeError):
                return
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    began = time.monotonic()
    try:
        status, body = send()
        outcome = str(status)
    except (OSError, http.client.HTTPException) as exc:
        status, body, outcome = 0, b"", f"no answer ({type(exc).__name__})"
    seconds = time.monotonic() - began
    done.set()
    sampler.join()
    if emulator.process.poll() is not None:
        outcome = f"server died (exit {emulator.process.returncode})"
    return outcome, seconds, max(peak[0] - start, 0.0), len(body) / 1e6


def _sql_replays(emulator: Emulator) -> list[tuple[str, str, Callable[[], tuple[int, bytes]]]]:
    body, headers = _multipart("d", "t.csv", b"a,b\n1,x\n2,y\n")
    assert emulator.call("POST", "/api/v1/datasets", body, headers)[0] == 201
    queries = ["SELECT length(repeat('x', 2000000000)) AS n",
               "SELECT repeat('x', 1000000) AS s FROM range(10000)",
               "SELECT damerau_levenshtein(repeat('a', 10000), repeat('b', 10000)) AS d"]
    return [("SQL on DuckDB", query, lambda query=query: emulator.call(
        "POST", "/api/v1/domains/d/sql", *_json({"sql": query}))) for query in queries]


def _postgres_replays(emulator: Emulator) -> list[tuple[str, str, Callable[[], tuple[int, bytes]]]]:
    url = os.environ.get("TEST_POSTGRES_URL", "postgresql+pg8000://postgres@127.0.0.1:5432/test")
    host_port = url.split("@", 1)[1].split("/", 1)[0]
    host, _, port = host_port.partition(":")
    connection = {"name": "bench", "host": host, "port": int(port or 5432), "dbname": url.rsplit("/", 1)[1],
                  "user": url.split("//", 1)[1].split("@", 1)[0].split(":")[0], "sslmode": "disable"}
    if emulator.call("POST", "/api/v1/postgres/connections", *_json(connection))[0] not in (200, 201):
        return []
    query = "SELECT repeat('x', 500000000) AS s FROM generate_series(1, 2)"
    return [("SQL on Postgres", query, lambda: emulator.call("POST", "/api/v1/postgres/bench/query",
                                                             *_json({"sql": query})))]


def _body_replays(emulator: Emulator) -> list[tuple[str, str, Callable[[], tuple[int, bytes]]]]:
    size = 600 * 1024 * 1024

    def refused_body() -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=120)
        try:
            connection.putrequest("POST", "/api/v1/health")
            connection.putheader("Content-Length", str(size))
            connection.putheader("Content-Type", "application/octet-stream")
            connection.endheaders()
            chunk = b"x" * (1024 * 1024)
            try:
                for _ in range(size // len(chunk)):
                    connection.send(chunk)
            except OSError:
                pass  # the server answered and closed without reading: what a refusal should do
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    return [("request body", "POST /api/v1/health with a 600 MB body", refused_body)]


def _archive_replays(emulator: Emulator) -> list[tuple[str, str, Callable[[], tuple[int, bytes]]]]:
    from tests.unit.analysis.test_archive_budget import lying_bomb

    bomb = lying_bomb("xlsx", 1200)
    body, headers = _multipart("d", "book.xlsx", bomb)
    return [("uploads and archives", f"an .xlsx of {len(bomb) / 1e6:.1f} MB whose sheet inflates to 1.2 GB, "
             "stated as 1,000 bytes", lambda: emulator.call("POST", "/api/v1/datasets", body, headers))]


CHART_PROGRAM = """
import json, os, sys
from common.charts.render import render_png
def rss():
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("VmHWM:")) / 1024
spec = {"mark": "bar", "data": {"values": [{"r": "n", "s": 3}]}, "transform": [
    {"calculate": "sequence(0, 1e7)", "as": "q"}, {"flatten": ["q"]}],
    "encoding": {"x": {"field": "r", "type": "nominal"}, "y": {"field": "s", "type": "quantitative"}}}
render_png({"mark": "bar", "data": {"values": [{"r": "n", "s": 3}]}, "encoding": spec["encoding"]})
start = rss()
try:
    render_png(spec)
    outcome = "200"
except Exception as exc:
    outcome = getattr(exc, "code", type(exc).__name__)
print(json.dumps({"outcome": outcome, "growth": rss() - start}))
"""


def measure_chart(source: str) -> Replay:
    """Render a spec that expands its data past any policy, in a fresh serving process of the tree at ``source``:
    the renderer's failure must stay in its worker, not the process that serves everyone."""
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-c", CHART_PROGRAM], cwd=source, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": source, "NO_GCE_CHECK": "true"}, timeout=300)
    seconds = time.monotonic() - began
    if done.returncode != 0:
        status, growth = f"serving process died (exit {done.returncode})", 0.0
    else:
        reported = json.loads(done.stdout.strip().splitlines()[-1])
        status, growth = reported["outcome"], reported["growth"]
    return Replay("chart rendering", "`sequence(0, 1e7)` + `flatten`, rendered past the policy", "300 MB in the "
                  "serving process", status, seconds, growth, 0.0)


CLASSES = {
    "SQL on DuckDB": (_sql_replays, f"DuckDB limit ({SQL_MEMORY_LIMIT_MB} MB) + 300 MB"),
    "SQL on Postgres": (_postgres_replays, "300 MB"),
    "request body": (_body_replays, "nothing read"),
    "uploads and archives": (_archive_replays, "EXCEL_MAX_UNCOMPRESSED_BYTES, refused before inflating"),
}


def survives_all(source: str = ROOT) -> tuple[int, bool]:
    """Send every class's hostile requests to ONE emulator in turn; return (requests sent, whether it still
    answers its health check at the end)."""
    with tempfile.TemporaryDirectory(prefix="bench-budget-") as workdir:
        emulator = Emulator(source, workdir)
        try:
            sent = 0
            for requests, _ in CLASSES.values():
                for _, _, send in requests(emulator):
                    measure_request(emulator, send)
                    sent += 1
            return sent, emulator.process.poll() is None and emulator.call("GET", "/api/v1/health")[0] == 200
        except OSError:
            return sent, False
        finally:
            emulator.close()


def measure(source: str = ROOT) -> list[Replay]:
    """Replay every guarded class's hostile requests against fresh emulators of the tree at ``source``."""
    replays = []
    for requests, budget in CLASSES.values():
        with tempfile.TemporaryDirectory(prefix="bench-budget-") as workdir:
            emulator = Emulator(source, workdir)
            try:
                for request_class, request, send in requests(emulator):
                    if emulator.process.poll() is not None:
                        emulator.close()
                        emulator = Emulator(source, workdir)
                    status, seconds, growth, size = measure_request(emulator, send)
                    replays.append(Replay(request_class, request, budget, status, seconds, growth, size))
            finally:
                emulator.close()
    return [*replays, measure_chart(source)]


if __name__ == "__main__":
    tree = sys.argv[1] if len(sys.argv) > 1 else ROOT  # another tree to compare, e.g. an older checkout
    sent, alive = survives_all(tree)
    print(f"one emulator, every hostile request: {sent} sent, survived: {alive}")
    for replay in measure(tree):
        print(f"| {replay.request_class} | `{replay.request}` | {replay.status} | {replay.seconds:.1f} s | "
              f"+{replay.growth_mb:.0f} MB | {replay.response_mb:.1f} MB | {replay.budget} |")
