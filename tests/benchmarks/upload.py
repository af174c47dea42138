"""Upload of a large CSV through the emulator: wall time, the server's peak RSS, then preview latency; and the
same file as a direct upload (reserve, PUT, commit), in a fresh emulator so its peak is its own."""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import socket
import subprocess
import sys
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclasses.dataclass(frozen=True)
class UploadResult:
    file_bytes: int
    upload_seconds: float
    baseline_rss_bytes: int
    peak_rss_bytes: int
    preview_seconds: list[float]


@dataclasses.dataclass(frozen=True)
class DirectUploadResult:
    put_seconds: float
    commit_seconds: float
    peak_rss_bytes: int


def write_csv(path: str, rows: int) -> None:
    """Write a realistic 10-column sales CSV (about 80 bytes a row)."""
    import polars as pl

    index = pl.col("order_id")
    regions = ["North", "South", "East", "West", "Central", "Coastal", "Highlands"]
    channels = ["online-store", "retail-store", "partner-store"]
    frame = pl.DataFrame({"order_id": pl.int_range(0, rows, eager=True)}).with_columns(
        order_date=pl.date(2020, 1, 1) + pl.duration(days=(index * 7919) % 1826),
        region=(index % 7).replace_strict(dict(enumerate(regions)), return_dtype=pl.String),
        product=pl.format("Product {}", index % 997),
        units=(index * 7919) % 50 + 1,
        unit_price=((index * 104729) % 10000) / 100.0,
        revenue=((index * 1299709) % 5000000) / 100.0,
        discount=((index * 15485863) % 30) / 100.0,
        returned=index % 13 == 0,
        channel=(index % 3).replace_strict(dict(enumerate(channels)), return_dtype=pl.String),
    )
    frame.write_csv(path)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _memory_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not found")


def _start_emulator(workdir: str) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": ROOT, "NO_GCE_CHECK": "true", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
           "LOG_LEVEL": "ERROR", "MAX_UPLOAD_BYTES": str(2 * 1024**3)}
    # No background warm-up: the peak measured must be the upload's, not LiteLLM's import.
    process = subprocess.Popen([sys.executable, "-m", "local_emulator", "--port", str(port), "--data-dir",
                                os.path.join(workdir, "data"), "--no-warm-up"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the emulator did not start")


def _stream_multipart(port: int, path: str) -> int:
    boundary = uuid.uuid4().hex
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="domain"\r\n\r\nbench\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="sales.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body():
        yield head
        with open(path, "rb") as handle:
            while chunk := handle.read(1024 * 1024):
                yield chunk
        yield tail

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    connection.request("POST", "/api/v1/datasets", body=body(), headers={
        "X-User-Id": "bench", "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(len(head) + os.path.getsize(path) + len(tail))})
    response = connection.getresponse()
    payload = response.read()
    if response.status != 201:
        raise RuntimeError(f"upload failed: {response.status} {payload[:500]!r}")
    return response.status


def _time_preview(port: int, repeat: int = 20) -> list[float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    samples = []
    for _ in range(repeat + 1):
        started = time.perf_counter()
        connection.request("GET", "/api/v1/datasets/bench/sales.csv?n=1000", headers={"X-User-Id": "bench"})
        response = connection.getresponse()
        response.read()
        samples.append(time.perf_counter() - started)
        if response.status != 200:
            raise RuntimeError(f"preview failed: {response.status}")
    return samples[1:]  # the first pays for importing Polars


def measure(workdir: str, *, rows: int) -> UploadResult:
    """Generate the CSV, upload it through a fresh emulator, and time previews afterwards."""
    csv_path = os.path.join(workdir, "sales.csv")
    write_csv(csv_path, rows)
    process, port = _start_emulator(workdir)
    try:
        # Warm-up request: the emulator's functions are loaded; this is the server's resting memory.
        warmup = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        warmup.request("GET", "/api/v1/datasets", headers={"X-User-Id": "bench"})
        warmup.getresponse().read()
        baseline = _memory_kb(process.pid, "VmRSS") * 1024
        started = time.perf_counter()
        _stream_multipart(port, csv_path)
        upload_seconds = time.perf_counter() - started
        peak = _memory_kb(process.pid, "VmHWM") * 1024
        previews = _time_preview(port)
    finally:
        process.terminate()
        process.wait(timeout=30)
    return UploadResult(os.path.getsize(csv_path), upload_seconds, baseline, peak, previews)


def measure_direct(workdir: str, csv_path: str) -> DirectUploadResult:
    """Send ``csv_path`` as a direct upload through a fresh emulator: the PUT and the commit, timed apart."""
    process, port = _start_emulator(os.path.join(workdir, "direct"))
    headers = {"X-User-Id": "bench", "Content-Type": "application/json"}
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        connection.request("POST", "/api/v1/uploads", headers=headers, body=json.dumps({
            "domain": "bench", "filename": "sales.csv", "size_bytes": os.path.getsize(csv_path)}))
        reserved = json.loads(connection.getresponse().read())
        upload = reserved["upload"]
        started = time.perf_counter()
        with open(csv_path, "rb") as handle:
            connection.request(upload["method"], upload["url"], body=handle, headers={
                **upload["headers"], "Content-Length": str(os.path.getsize(csv_path))})
            response = connection.getresponse()
            response.read()
        put_seconds = time.perf_counter() - started
        if response.status != 200:
            raise RuntimeError(f"direct upload PUT failed: {response.status}")
        started = time.perf_counter()
        connection.request("POST", reserved["commit_url"], headers=headers)
        response = connection.getresponse()
        payload = response.read()
        commit_seconds = time.perf_counter() - started
        if response.status != 201:
            raise RuntimeError(f"direct upload commit failed: {response.status} {payload[:500]!r}")
        peak = _memory_kb(process.pid, "VmHWM") * 1024
    finally:
        process.terminate()
        process.wait(timeout=30)
    return DirectUploadResult(put_seconds, commit_seconds, peak)
