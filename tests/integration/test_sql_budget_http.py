"""SQL within its budgets, over HTTP through the functions: the hostile requests of issue 8 replayed, each a 4xx
or a bounded answer with the instance's memory growth measured; byte caps on Postgres queries and table pages;
one deadline across a cursor's fetches; the ``sql`` rate-limit class; the agent's repair hint.

The replays run in a fresh process (this module run as a script), which serves the requests through the
functions-framework apps in process and samples the proportional memory (PSS) of its whole process tree (itself,
the SQL launcher and each query's process) while each request runs: growth is the peak over the value just
before it, so pages the processes share are counted once.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from tests.conftest import require_service
from tests.integration import test_postgres_api as shared
from tests.integration.test_postgres_api import table_path, use_settings

# The shared fixtures, made visible to pytest in this module.
key_a, main, pg_ctx, pg_schema, pg_url = shared.key_a, shared.main, shared.pg_ctx, shared.pg_schema, shared.pg_url

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MEMORY_LIMIT_MB = 256
GROWTH_ALLOWED_MB = MEMORY_LIMIT_MB + 300
MAX_RESULT_BYTES = 16 * 1024 * 1024
HUGE = "repeat('x', 10000000)"
DUCKDB_REPLAYS = [
    # The three requests of the issue: +3.9 GB, a 953 MB body (+2.9 GB), +770 MB under a 1024 MB limit.
    "SELECT length(repeat('x', 2000000000)) AS n",
    "SELECT repeat('x', 1000000) AS s FROM range(10000)",
    "SELECT damerau_levenshtein(repeat('a',10000), repeat('b',10000)) AS d",
    # Other builders a denylist would miss.
    "WITH RECURSIVE t(s, n) AS (SELECT 'x', 0 UNION ALL SELECT s || s, n + 1 FROM t WHERE n < 40) "
    "SELECT max(length(s)) AS n FROM t",
    "SELECT length(string_agg(repeat('x', 1000), '')) AS n FROM range(3000000)",
    "SELECT len(list(repeat('x', 1000))) AS n FROM range(2000000)",
    "SELECT len(range(300000000)) AS n",
    "SELECT length(format('{:>1500000000}', 'x')) AS n",
    "SELECT length(printf('%1500000000d', 1)) AS n",
    f"SELECT length(concat({', '.join(['s'] * 100)})) AS n FROM (SELECT {HUGE} AS s)",
    "SELECT max(length(a.s || b.s || a.s || b.s)) AS n FROM (SELECT repeat('x', 300000) AS s FROM range(3000)) a, "
    "(SELECT repeat('y', 300000) AS s FROM range(3000)) b",
    "SELECT length(replace(repeat('x', 1000000), 'x', repeat('y', 1000))) AS n",
    "SELECT len(repeat([1, 2, 3], 200000000)) AS n",
    "SELECT range AS id, repeat('x', 500000) AS s FROM range(1000)",
]
POSTGRES_REPLAYS = [
    # The request of the issue: a 1 GB body.
    "SELECT repeat('x',500000000) FROM generate_series(1,2)",
    "SELECT repeat('x', 900000) AS s FROM generate_series(1, 1000)",
    f"SELECT {', '.join(f'repeat({chr(39)}x{chr(39)}, 1000000) AS c{index}' for index in range(20))}",
    "SELECT string_agg(repeat('x', 1000), '') AS s FROM generate_series(1, 100000)",
    "SELECT g, repeat('y', 2000000) AS s FROM generate_series(1, 5) g",
]


def test_hostile_duckdb_requests_are_refused_or_bounded_within_the_memory_budget():
    for outcome in _replay("duckdb", DUCKDB_REPLAYS):
        _assert_bounded(outcome)


def test_hostile_postgres_requests_are_refused_or_bounded_within_the_memory_budget():
    url = require_service("TEST_POSTGRES_URL", "PostgreSQL")
    outcomes = _replay("postgres", POSTGRES_REPLAYS, url)
    for outcome in outcomes:
        _assert_bounded(outcome)
    assert outcomes[0]["code"] in {"SQL_TOO_EXPENSIVE", "SQL_TIMEOUT"}
    assert outcomes[1]["status"] == 200 and outcomes[1]["truncated"]


def _assert_bounded(outcome: dict) -> None:
    assert outcome["growth_mb"] <= GROWTH_ALLOWED_MB, outcome
    assert outcome["body_bytes"] <= MAX_RESULT_BYTES, outcome
    if outcome["status"] == 200:
        return
    assert outcome["status"] == 400 and outcome["code"] in {"SQL_TOO_EXPENSIVE", "SQL_TIMEOUT"}, outcome


def _replay(kind: str, queries: list[str], pg_url: str = "") -> list[dict]:
    if not os.path.exists("/proc/self/smaps_rollup"):
        pytest.skip("measures memory through /proc/<pid>/smaps_rollup (Linux)")
    completed = subprocess.run([sys.executable, "-m", "tests.integration.test_sql_budget_http", kind, pg_url],
                               input=json.dumps(queries), cwd=ROOT, capture_output=True, text=True, timeout=900,
                               check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    outcomes = json.loads(completed.stdout.strip().splitlines()[-1])
    assert [outcome["sql"] for outcome in outcomes] == queries
    return outcomes


# Postgres: byte caps while fetching, in process ---------------------------------------------------------------


def test_postgres_rows_stop_at_the_byte_cap_and_values_over_the_value_cap_are_refused(alice, main, pg_ctx):
    use_settings(pg_ctx, sql_max_result_bytes=64 * 1024, sql_max_value_bytes=8 * 1024)
    answer = alice.request("POST", f"{main}/query", json={
        "sql": "select g, repeat('x', 1000) as s from generate_series(1, 1000) g order by g", "limit": 1000})
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["truncated"] and 40 < body["row_count"] < 64
    assert [row["g"] for row in body["rows"]] == list(range(1, body["row_count"] + 1))
    assert len(answer.get_data()) <= 64 * 1024
    for sql, fragment in [("select 1 as id, repeat('x', 20000) as s", "column 's' holds a 20002-byte value"),
                          ("select repeat('x', 50000000) as s", "one row of the result"),
                          ("select length(repeat('x', 2000000000)) as n", "requested length too large")]:
        refused = alice.request("POST", f"{main}/query", json={"sql": sql})
        error = shared.assert_error_shape(refused, 400)
        assert error["code"] == "SQL_TOO_EXPENSIVE" and fragment in error["message"], error


def test_a_table_page_stops_at_the_byte_cap_and_the_next_page_goes_on(alice, main, pg_ctx):
    rows = [{"n": index, "text": f"{index:04d}" + "x" * 996} for index in range(200)]
    created = alice.request("POST", "/api/v1/postgres/main/tables", json={"table": "pages", "rows": rows})
    assert created.status_code == 201, created.get_json()
    use_settings(pg_ctx, sql_max_result_bytes=64 * 1024)
    first = alice.get(table_path("pages") + "?limit=1000").get_json()
    assert first["has_more"] and 40 < len(first["rows"]) < 64
    second = alice.get(table_path("pages") + f"?limit=1000&offset={len(first['rows'])}").get_json()
    assert [row["n"] for row in first["rows"] + second["rows"]] == list(range(len(first["rows"]) * 2))


def test_one_deadline_covers_every_fetch_of_a_query(alice, main, pg_ctx, monkeypatch):
    from common.services.postgres import query

    # 2000 rows at about 2.5 ms each: every FETCH of 50 rows is far under the 1 s statement timeout, and all of
    # them together are far over it.
    monkeypatch.setattr(query, "FETCH_ROWS", 50)
    use_settings(pg_ctx, pg_statement_timeout_seconds=1.0)
    started = time.monotonic()
    slow = alice.request("POST", f"{main}/query", json={
        "sql": "select g, (select count(*) from generate_series(1, 20000 + g % 2)) as c "
               "from generate_series(1, 2000) g", "limit": 2000})
    assert shared.assert_error_shape(slow, 400)["code"] == "SQL_TIMEOUT"
    assert time.monotonic() - started < 4


# The sql rate-limit class, and the agent's repair hint --------------------------------------------------------


def test_sql_requests_count_against_the_sql_rate_limit(alice, main, pg_ctx):
    use_settings(pg_ctx, rate_limits="sql=3/minute")
    assert alice.upload("shop", ("t.csv", b"a\n1\n")).status_code == 201
    answers = [alice.request("POST", "/api/v1/domains/shop/sql", json={"sql": "SELECT 1 AS one"}),
               alice.request("POST", f"{main}/query", json={"sql": "select 1 as one"}),
               alice.get(table_path() + "?limit=1")]
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    for refused in (alice.request("POST", "/api/v1/domains/shop/sql", json={"sql": "SELECT 1 AS one"}),
                    alice.request("POST", f"{main}/query", json={"sql": "select 1 as one"})):
        assert refused.status_code == 429 and refused.get_json()["error"]["code"] == "RATE_LIMITED"
    assert alice.get("/api/v1/domains/shop/tables").status_code == 200  # listing is not a SQL request


def test_a_query_over_the_budget_goes_back_to_the_manipulator_as_a_repair_hint(pipeline, analyst):
    pipeline.upload("sales")
    analyst.sql.append("SELECT region, length(repeat('x', 2000000000)) AS n FROM sales")
    body = pipeline.wait(pipeline.ask("Compare revenue by region")["query_id"])
    assert body["status"] == "succeeded", body
    prompts = [messages[-1]["content"] for agent, messages, _ in analyst.calls if agent == "manipulator"]
    assert len(prompts) == 1 and "memory limit" in prompts[0]  # the planner's query, repaired once


# The replay process -------------------------------------------------------------------------------------------


def _serve_and_replay(kind: str, pg_url: str, queries: list[str]) -> list[dict]:
    """Serve the functions in this process and replay ``queries``; return each answer and the memory it took."""
    from werkzeug.test import Client

    from common import bootstrap
    from common.config import Settings
    from common.crypto import generate_key
    from common.gateway import route_table
    from local_emulator.server import GatewayDispatcher, load_function_apps

    settings = Settings.from_env({}, data_dir=tempfile.mkdtemp(prefix="sql-budget-"), encryption_keys=generate_key(),
                                 sql_memory_limit_mb=MEMORY_LIMIT_MB, sql_timeout_seconds=10.0,
                                 pg_statement_timeout_seconds=10.0, rate_limits="")
    bootstrap.use(bootstrap.build(settings))
    client = Client(GatewayDispatcher(load_function_apps(), route_table()))
    path = _prepare(client, kind, pg_url)
    _post(client, path, "SELECT 1 AS one")  # imports, the launcher: not a query's growth
    outcomes = []
    for sql in queries:
        with _PeakMemory() as memory:
            started = time.monotonic()
            answer = _post(client, path, sql)
            seconds = time.monotonic() - started
        body = answer.get_json()
        outcomes.append({"sql": sql, "status": answer.status_code, "seconds": round(seconds, 2),
                         "body_bytes": len(answer.get_data()), "growth_mb": memory.growth_mb,
                         "code": (body.get("error") or {}).get("code"), "truncated": body.get("truncated"),
                         "rows": body.get("row_count")})
    return outcomes


def _prepare(client, kind: str, pg_url: str) -> str:
    headers = {"X-User-Id": "alice"}
    if kind == "duckdb":
        uploaded = client.open("/api/v1/datasets", method="POST", headers=headers, content_type="multipart/form-data",
                               data={"domain": "d", "file": [(io.BytesIO(b"a,b\n1,x\n2,y\n"), "t.csv")]})
        assert uploaded.status_code == 201, uploaded.get_data()
        return "/api/v1/domains/d/sql"
    from sqlalchemy.engine import make_url

    url = make_url(pg_url)
    saved = client.open("/api/v1/postgres/connections", method="POST", headers=headers, json={
        "name": "main", "host": url.host, "port": url.port or 5432, "dbname": url.database, "user": url.username,
        "sslmode": "disable", "schema": "public"})
    assert saved.status_code in (200, 201), saved.get_data()
    return "/api/v1/postgres/main/query"


def _post(client, path: str, sql: str):
    return client.open(path, method="POST", headers={"X-User-Id": "alice"}, json={"sql": sql})


class _PeakMemory:
    """Samples the PSS of this process and its descendants every few milliseconds while the block runs."""

    def __enter__(self) -> _PeakMemory:
        self._before = _tree_pss_kb()
        self._peak = self._before
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self._peak = max(self._peak, _tree_pss_kb())

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
        self.growth_mb = round((self._peak - self._before) / 1024)


def _tree_pss_kb() -> int:
    parents: dict[int, list[int]] = {}
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{name}/stat", encoding="ascii") as stat:
                parents.setdefault(int(stat.read().rsplit(")", 1)[1].split()[1]), []).append(int(name))
        except OSError:
            continue  # gone while listed
    total, pending = 0, [os.getpid()]
    while pending:
        pid = pending.pop()
        pending += parents.get(pid, [])
        try:
            with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as rollup:
                total += next(int(line.split()[1]) for line in rollup if line.startswith("Pss:"))
        except (OSError, StopIteration):
            continue
    return total


if __name__ == "__main__":
    print(json.dumps(_serve_and_replay(sys.argv[1], sys.argv[2], json.loads(sys.stdin.read()))))
