"""Concurrent readers of one emulator: READERS clients at once, each reading the API over its own connection.

Each reader sends REQUESTS_EACH requests back to back (a domain's table listing, the domain list, liveness)
with HTTP/1.1 keep-alive where the server keeps the connection; all start together. Reported: latency
p50/p95/p99/max over every request, throughput, failures, and the connections the server made the readers open.
The readers run in CLIENT_PROCESSES processes so the client's own interpreter lock does not become the figure.

    python -m tests.benchmarks.readers [--source TREE] [--threads N] [--readers 200]

``--source`` runs another checkout's emulator (the tree before a change), as the budgets section does.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import multiprocessing
import tempfile
import threading
import time

from tests.benchmarks.budgets import ROOT, Emulator, _multipart

READERS = 200
REQUESTS_EACH = 25
CLIENT_PROCESSES = 4
PATHS = ("/api/v1/domains/sales/tables", "/api/v1/domains", "/api/v1/health/live")
HEADERS = {"X-User-Id": "bench"}


@dataclasses.dataclass(frozen=True)
class ReadersResult:
    server: str
    readers: int
    requests: int
    failures: int
    connections: int
    seconds: float
    p50: float
    p95: float
    p99: float
    worst: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


def _reader(port: int, start_at: float, latencies: list[float], counts: dict[str, int]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.auto_open = 0  # count each new connection ourselves
    time.sleep(max(0.0, start_at - time.time()))
    for number in range(REQUESTS_EACH):
        began = time.perf_counter()
        try:
            if connection.sock is None:
                connection.connect()
                counts["connections"] += 1
            connection.request("GET", PATHS[number % len(PATHS)], headers=HEADERS)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                counts["failures"] += 1
            if response.will_close:
                connection.close()
        except OSError:
            counts["failures"] += 1
            connection.close()
        latencies.append(time.perf_counter() - began)
    connection.close()


def _client_process(port: int, readers: int, start_at: float, out: multiprocessing.Queue) -> None:
    latencies: list[float] = []  # list.append is atomic: the threads share it
    counts = {"connections": 0, "failures": 0}
    lock = threading.Lock()
    threads = []
    for _ in range(readers):
        own: dict[str, int] = {"connections": 0, "failures": 0}

        def run(own: dict[str, int] = own) -> None:
            _reader(port, start_at, latencies, own)
            with lock:
                for key, value in own.items():
                    counts[key] += value

        threads.append(threading.Thread(target=run))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put((latencies, counts))


def _percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def measure(source: str = ROOT, threads: int | None = None, readers: int = READERS,
            server: str = "") -> ReadersResult:
    with tempfile.TemporaryDirectory(prefix="bench-readers-") as workdir:
        options = ("--threads", str(threads)) if threads else ()
        emulator = Emulator(source, workdir, *options, RATE_LIMITS="", LOG_LEVEL="ERROR")
        try:
            rows = "".join(f"region{n % 7},{n},{n * 1.5}\n" for n in range(500))
            body, headers = _multipart("sales", "orders.csv", ("region,units,price\n" + rows).encode())
            status, answer = emulator.call("POST", "/api/v1/datasets", body, headers)
            assert status in (200, 201), answer[:300]
            for path in PATHS:  # each path's first request loads its code (the emulator starts without warm-up)
                assert emulator.call("GET", path, headers=HEADERS)[0] == 200, path
            context = multiprocessing.get_context("fork")
            out = context.Queue()
            start_at = time.time() + 1.0  # every client process started and connected by then
            shares = [readers // CLIENT_PROCESSES + (n < readers % CLIENT_PROCESSES) for n in range(CLIENT_PROCESSES)]
            clients = [context.Process(target=_client_process, args=(emulator.port, share, start_at, out))
                       for share in shares]
            for client in clients:
                client.start()
            results = [out.get() for _ in clients]
            seconds = time.time() - start_at
            for client in clients:
                client.join()
        finally:
            emulator.close()
    latencies = sorted(value for batch, _ in results for value in batch)
    return ReadersResult(
        server=server or (f"threads={threads}" if threads else "default"), readers=readers,
        requests=len(latencies), failures=sum(counts["failures"] for _, counts in results),
        connections=sum(counts["connections"] for _, counts in results), seconds=seconds,
        p50=_percentile(latencies, 0.50), p95=_percentile(latencies, 0.95), p99=_percentile(latencies, 0.99),
        worst=latencies[-1])


def report(results: list[ReadersResult]) -> None:
    print(f"\n## Concurrent readers ({results[0].readers} at once, {REQUESTS_EACH} GETs each, keep-alive "
          "where the server keeps connections)\n")
    print("| server | requests/s | p50 | p95 | p99 | max | failures | connections opened |")
    print("|---|---|---|---|---|---|---|---|")
    for result in results:
        print(f"| {result.server} | {result.per_second:.0f} | {result.p50 * 1000:.0f} ms | {result.p95 * 1000:.0f} ms "
              f"| {result.p99 * 1000:.0f} ms | {result.worst * 1000:.0f} ms | {result.failures} | "
              f"{result.connections} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.readers")
    parser.add_argument("--source", default=ROOT, help="the checkout whose emulator to run (default: this one)")
    parser.add_argument("--threads", default="", help="comma-separated server thread counts to compare")
    parser.add_argument("--readers", type=int, default=READERS)
    args = parser.parse_args(argv)
    counts = [int(value) for value in args.threads.split(",") if value] or [None]
    report([measure(args.source, threads, args.readers) for threads in counts])


if __name__ == "__main__":
    main()
