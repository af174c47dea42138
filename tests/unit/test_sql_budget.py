"""SQL results and queries within their budgets: the result budget's cuts, the capped query process, and DuckDB
queries that build values outside its memory limit, refused instead of growing the instance."""

from __future__ import annotations

import json
import os
import time

import pytest

from common import errors
from common.analysis import sql_process
from common.analysis.result_budget import ResultBudget, ResultLimits, envelope_bytes, json_bytes
from common.analysis.sql_engine import SqlLimits, SqlTimeout, SqlTooExpensive, run_sql
from common.http import json_response

LIMITS = SqlLimits(memory_limit_mb=256, threads=2, timeout_seconds=20, max_rows=1000)
MIB = 1024 * 1024


def _allocate(size: int) -> int:
    """A target for the query process: hold ``size`` bytes at once, answer how many."""
    return len(bytearray(size))


class Refused(errors.BadRequest):
    code = "REFUSED"


def _refuse() -> None:
    raise Refused("no", details={"why": "testing"})


def _fail() -> None:
    raise ValueError("a bug")


# The result budget -----------------------------------------------------------------------------------------


def test_the_budget_keeps_rows_up_to_the_row_cap_and_says_it_cut():
    budget = ResultBudget(["n"], ResultLimits(max_rows=5, max_value_bytes=MIB, max_result_bytes=MIB))
    assert budget.add([(1,), (2,), (3,)]) is True
    assert budget.add([(4,), (5,), (6,)]) is False
    assert [row["n"] for row in budget.rows] == [1, 2, 3, 4, 5] and budget.truncated
    exact = ResultBudget(["n"], ResultLimits(max_rows=3, max_value_bytes=MIB, max_result_bytes=MIB))
    assert exact.add([(1,), (2,), (3,)]) is True and not exact.truncated


@pytest.mark.parametrize("batch_rows", [1, 7, 100, 1000])
def test_the_rows_stop_where_the_response_would_pass_the_byte_cap(batch_rows):
    limits = ResultLimits(max_rows=10_000, max_value_bytes=MIB, max_result_bytes=64 * 1024)
    columns = [{"name": "id", "dtype": "BIGINT"}, {"name": "text", "dtype": "VARCHAR"}]
    budget = ResultBudget(["id", "text"], limits, envelope=envelope_bytes(columns, "SELECT ..."))
    rows = [(index, "é" * (index % 50)) for index in range(3000)]  # two UTF-8 bytes per character
    for start in range(0, len(rows), batch_rows):
        if not budget.add(rows[start:start + batch_rows]):
            break
    assert budget.truncated and 0 < len(budget.rows) < 3000
    assert budget.rows == [{"id": index, "text": text} for index, text in rows[:len(budget.rows)]]
    assert budget.raw_rows == rows[:len(budget.rows)]
    body = json_response({"columns": columns, "rows": budget.rows, "row_count": len(budget.rows), "truncated": True,
                          "elapsed_ms": 12.5, "sql": "SELECT ..."}).get_data()
    assert limits.max_result_bytes - 2048 < len(body) <= limits.max_result_bytes  # cut close to the cap


def test_a_value_over_the_value_cap_refuses_the_query_naming_its_column():
    budget = ResultBudget(["id", "blob"], ResultLimits(max_rows=10, max_value_bytes=1000, max_result_bytes=MIB))
    with pytest.raises(SqlTooExpensive) as caught:
        budget.add([(1, "x" * 10), (2, "x" * 999)])  # 1001 bytes with its quotes
    assert caught.value.status == 400 and caught.value.code == "SQL_TOO_EXPENSIVE"
    assert caught.value.details == {"column": "blob", "value_bytes": 1001, "max_value_bytes": 1000}
    assert "'blob'" in caught.value.message and "left(x, n)" in caught.value.message


def test_a_first_row_over_the_whole_budget_is_refused_not_returned_as_an_empty_cut():
    budget = ResultBudget(["a", "b", "c"], ResultLimits(max_rows=10, max_value_bytes=600, max_result_bytes=1500),
                          envelope=0)
    with pytest.raises(SqlTooExpensive, match="one row of the result"):
        budget.add([("x" * 500, "y" * 500, "z" * 500)])


def test_values_are_measured_as_the_json_they_become():
    budget = ResultBudget(["d", "b"], ResultLimits(max_rows=10, max_value_bytes=MIB, max_result_bytes=MIB))
    import datetime
    import decimal

    budget.add([(datetime.date(2024, 1, 2), b"\x00\x01"), (decimal.Decimal("1.5"), float("nan"))])
    assert budget.rows == [{"d": "2024-01-02", "b": "AAE="}, {"d": 1.5, "b": None}]
    assert json_bytes(budget.rows[0]) == len(json.dumps(budget.rows[0], separators=(",", ":")))


# The query process -------------------------------------------------------------------------------------------


def _capped(target, *args, memory_mb: int = 64, timeout: float = 20):
    return sql_process.run_capped(target, args, memory_bytes=memory_mb * MIB, timeout_seconds=timeout)


def test_the_process_answers_with_the_value_or_the_error_it_raised():
    assert _capped(sum, [1, 2, 3]) == 6
    with pytest.raises(Refused) as caught:
        _capped(_refuse)
    assert (caught.value.message, caught.value.code, caught.value.details) == ("no", "REFUSED", {"why": "testing"})
    with pytest.raises(RuntimeError, match="ValueError: a bug"):
        _capped(_fail)


def test_the_process_cannot_allocate_past_its_cap():
    assert _capped(_allocate, 16 * MIB, memory_mb=64) == 16 * MIB
    with pytest.raises(RuntimeError, match="MemoryError"):
        _capped(_allocate, 200 * MIB, memory_mb=64)


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="lists processes through /proc")
def test_a_process_past_its_deadline_is_killed_and_none_is_left():
    started = time.monotonic()
    with pytest.raises(sql_process.ProcessTimedOut):
        _capped(time.sleep, 30, timeout=0.5)
    assert time.monotonic() - started < 10
    assert _eventually(lambda: _children(_launcher_pid()) == [])


def test_no_more_processes_than_slots_run_at_once():
    """The instance's memory bound: with every slot taken, one more query waits, then gives up at its deadline."""
    import threading

    busy = threading.Thread(target=lambda: sql_process.run_capped(
        time.sleep, (1.5,), memory_bytes=64 * MIB, timeout_seconds=20, slots=1))
    busy.start()
    time.sleep(0.3)  # the sleeping process holds the one slot
    started = time.monotonic()
    with pytest.raises(sql_process.NoSlot):
        sql_process.run_capped(sum, ([1],), memory_bytes=64 * MIB, timeout_seconds=0.4, slots=1)
    assert 0.3 < time.monotonic() - started < 1.2
    # Waiting within its deadline, the next one runs as soon as the slot is free.
    assert sql_process.run_capped(sum, ([2],), memory_bytes=64 * MIB, timeout_seconds=20, slots=1) == 2
    busy.join()


def test_a_query_without_a_slot_answers_503_sql_busy():
    import threading

    busy = threading.Thread(target=lambda: sql_process.run_capped(
        time.sleep, (1.5,), memory_bytes=64 * MIB, timeout_seconds=20, slots=1))
    busy.start()
    time.sleep(0.3)
    limits = SqlLimits(memory_limit_mb=256, threads=1, timeout_seconds=0.4, max_rows=10, concurrency=1)
    with pytest.raises(errors.ServiceUnavailable) as caught:
        run_sql("SELECT 1 AS one", {}, limits)
    assert (caught.value.status, caught.value.code, caught.value.details) == (503, "SQL_BUSY", {"concurrency": 1})
    busy.join()
    assert run_sql("SELECT 1 AS one", {}, limits).rows == [{"one": 1}]


def test_a_process_that_dies_without_answering_is_reported():
    with pytest.raises(sql_process.ProcessDied):
        _capped(os._exit, 3)
    assert _capped(sum, [4]) == 4  # the launcher still serves


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads through /proc")
def test_the_launcher_forks_with_a_single_thread():
    _capped(sum, [1])
    assert os.listdir(f"/proc/{_launcher_pid()}/task") == [str(_launcher_pid())]


def _launcher_pid() -> int:
    return sql_process._LAUNCHER._process.pid


def _children(pid: int) -> list[int]:
    found = []
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{name}/stat", encoding="ascii") as stat:
                if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(name))
        except OSError:
            continue  # gone while listed
    return found


def _eventually(check, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# DuckDB queries that build big values ------------------------------------------------------------------------

HUGE = "repeat('x', 10000000)"
BUILDERS = [
    "SELECT length(repeat('x', 2000000000)) AS n",
    "SELECT repeat('x', 1000000) AS s FROM range(10000)",
    "SELECT damerau_levenshtein(repeat('a', 10000), repeat('b', 10000)) AS d",
    "SELECT len(range(300000000)) AS n",
    "SELECT length(format('{:>1500000000}', 'x')) AS n",
    "SELECT length(printf('%1500000000d', 1)) AS n",
    "WITH RECURSIVE t(s, n) AS (SELECT 'x', 0 UNION ALL SELECT s || s, n + 1 FROM t WHERE n < 40) "
    "SELECT max(length(s)) AS n FROM t",
    "SELECT length(string_agg(repeat('x', 1000), '')) AS n FROM range(3000000)",
    "SELECT len(list(repeat('x', 1000))) AS n FROM range(2000000)",
    f"SELECT length(concat({', '.join(['s'] * 100)})) AS n FROM (SELECT {HUGE} AS s)",
    "SELECT length(replace(repeat('x', 1000000), 'x', repeat('y', 1000))) AS n",
    "SELECT len(list_resize([1], 500000000)) AS n",
    "SELECT len(repeat([1, 2, 3], 200000000)) AS n",
    "SELECT len(array_agg(range)) AS n FROM range(300000000)",
    "SELECT length(lpad('x', 1500000000, 'y')) AS n",
]


@pytest.mark.parametrize("sql", BUILDERS)
def test_a_query_building_values_past_the_memory_limit_is_refused(sql):
    # Each of these grew the server by 0.5-15 GB under a 1024 MB DuckDB limit, and answered 200.
    limits = SqlLimits(memory_limit_mb=256, threads=2, timeout_seconds=3, max_rows=1000)
    with pytest.raises((SqlTooExpensive, SqlTimeout)) as caught:
        run_sql(sql, {}, limits)
    assert caught.value.status == 400


def test_a_value_over_the_value_cap_is_refused_with_its_column():
    with pytest.raises(SqlTooExpensive) as caught:
        run_sql("SELECT 1 AS id, repeat('x', 2000000) AS body", {}, LIMITS)
    assert caught.value.details["column"] == "body" and caught.value.details["value_bytes"] == 2_000_002


def test_a_result_over_the_byte_cap_is_cut_within_it():
    result = run_sql("SELECT range AS id, repeat('x', 100000) AS body FROM range(1000)", {}, LIMITS)
    assert result.truncated and 100 < result.row_count < 170
    assert [row["id"] for row in result.rows] == list(range(result.row_count))
    body = json_response({**result.__dict__, "tables": {}}).get_data()
    assert len(body) <= LIMITS.max_result_bytes


def test_legitimate_queries_still_run():
    totals = run_sql("SELECT range % 7 AS k, COUNT(*) AS n, SUM(range) AS s, COUNT(DISTINCT range % 100003) AS d "
                     "FROM range(3000000) GROUP BY k ORDER BY k", {}, LIMITS)
    assert [row["n"] for row in totals.rows] == [428572, 428572, 428572, 428571, 428571, 428571, 428571]
    assert sum(row["s"] for row in totals.rows) == 3000000 * 2999999 // 2 and not totals.truncated
    texts = run_sql("SELECT range AS id, repeat('ab', 450000) AS body FROM range(10)", {}, LIMITS)
    assert texts.row_count == 10 and not texts.truncated and len(texts.rows[9]["body"]) == 900_000
