"""The local emulator as a user runs it: one process, one port, real HTTP, default backends."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    port = free_port()
    data_dir = tmp_path_factory.mktemp("emulator-data")
    env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "STORAGE_BACKEND"}}
    process = subprocess.Popen([sys.executable, "-m", "local_emulator", "--port", str(port), "--data-dir",
                                str(data_dir)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90  # it warms up (model library, chart renderer, SQL launcher) before serving
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{base}/api/v1/health/live", timeout=1).close()
            break
        except OSError:
            if process.poll() is not None:
                pytest.fail(process.stdout.read().decode(errors="replace"))
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("the emulator did not start")
    yield base, data_dir
    process.terminate()
    output = process.communicate(timeout=10)[0].decode(errors="replace")
    assert "AUTH_MODE=dev" in output  # dev mode is announced loudly


def call(method: str, url: str, *, user: str = "alice", body: bytes | None = None,
         content_type: str | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers={"X-User-Id": user})
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, content) in files.items():
        header = (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                  f"Content-Type: application/octet-stream\r\n\r\n")
        parts.append(header.encode() + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def test_upload_list_preview_download_delete(emulator):
    base, data_dir = emulator
    csv = b"Region|Sales\nNorth|10\nSouth|20\n"
    body, content_type = multipart({"domain": "Retail"}, {"file": ("shops.csv", csv)})
    status, _, raw = call("POST", f"{base}/api/v1/datasets", body=body, content_type=content_type)
    assert status == 201, raw
    assert json.loads(raw)["items"][0]["tables"][0]["rows"] == 2

    status, _, raw = call("GET", f"{base}/api/v1/datasets/retail/shops.csv?n=5")
    assert status == 200 and json.loads(raw)["rows"][1] == {"Region": "South", "Sales": 20}

    status, headers, raw = call("GET", f"{base}/datasets?domain=retail")  # the original route
    assert status == 200 and headers["Deprecation"] == "true"
    assert [item["filename"] for item in json.loads(raw)["items"]] == ["shops.csv"]

    status, _, raw = call("GET", f"{base}/api/v1/datasets/retail/shops.csv?format=csv")
    assert raw.decode().splitlines() == ["Region,Sales", "North,10", "South,20"]
    assert os.path.exists(os.path.join(data_dir, "metadata.sqlite3"))

    assert call("GET", f"{base}/api/v1/datasets?domain=retail", user="bob")[2] == b'{"items":[]}'
    assert call("DELETE", f"{base}/api/v1/datasets/retail/shops.csv")[0] == 200
    assert call("GET", f"{base}/api/v1/datasets/retail/shops.csv")[0] == 404


def test_health_and_unknown_routes(emulator):
    base, _ = emulator
    assert call("GET", f"{base}/api/v1/health/ready")[0] == 200
    assert json.loads(call("GET", f"{base}/health")[2])["status"] == "healthy"
    status, _, raw = call("GET", f"{base}/api/v1/datasets/../../etc/passwd")
    assert status in (400, 404)
    assert b"root:" not in raw


def test_a_direct_upload_goes_through_the_emulators_signed_path(emulator):
    base, _ = emulator
    csv = b"Region,Sales\nNorth,10\nSouth,20\n"
    reserve = json.dumps({"domain": "Retail", "filename": "big.csv", "size_bytes": len(csv)}).encode()
    status, _, raw = call("POST", f"{base}/api/v1/uploads", body=reserve, content_type="application/json")
    assert status == 201, raw
    reserved = json.loads(raw)
    upload = reserved["upload"]
    put = urllib.request.Request(base + upload["url"], data=csv, method=upload["method"], headers=upload["headers"])
    with urllib.request.urlopen(put, timeout=30) as response:  # no X-User-Id: the signature is the permission
        assert response.status == 200
    status, _, raw = call("POST", base + reserved["commit_url"])
    assert status == 201 and json.loads(raw)["items"][0]["tables"][0]["rows"] == 2, raw
