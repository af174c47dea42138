"""Runs checked SQL in DuckDB over a domain's tables, inside memory, thread, time and row limits.

Each query gets a fresh in-memory DuckDB connection, and each table it reads is registered as a lazy
``pyarrow.dataset`` over its Parquet copy. DuckDB streams the file in batches and pushes its projection and
filters into the scan: only the columns the query uses are read, only the row groups its filters can match, and
nothing is loaded up front. Tables used to be loaded up front as Polars frames, which sat outside DuckDB's memory
limit (BENCHMARKS.md has the peak before and after); what stays outside the limit now is Arrow's read-ahead, a
bounded number of batches per scan. The pushdown makes parsing the query for the columns it names unnecessary,
and as DuckDB sees every column, its binder hints ("Candidate bindings: ...") name all of them. Closing the
connection drops the datasets, and with them any reader a query stopped early left open.
The connection cannot reach anything else: external access is off (no file, no network, no extension
install or load), Python variables are not scannable as tables, nothing spills to a temporary directory (on
Cloud Run the disk is memory, so the memory limit must be the limit), and the configuration is locked before
any model-written SQL runs, so ``SET`` cannot undo any of it.

Failures a query's author can fix are 400s with a code the manipulator agent reacts to: ``SQL_ERROR`` (DuckDB's
own message: unknown column, bad cast...), ``SQL_TIMEOUT`` and ``SQL_TOO_EXPENSIVE``. Not 408 for a timeout:
browsers and proxies retry a 408 on their own, which would run the same expensive query again; and not 422:
the code already says what kind of problem it is, and in every case the remedy is to send a different query.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import threading
import time
from typing import TYPE_CHECKING, Any

from common import errors
from common.analysis.sql_policy import SqlRejected
from common.analysis.tables import json_safe_value

if TYPE_CHECKING:
    from common.config import Settings


class SqlError(errors.BadRequest):
    """DuckDB refused or failed the query (binder, catalog, conversion errors...)."""

    code = "SQL_ERROR"


class SqlTimeout(errors.BadRequest):
    code = "SQL_TIMEOUT"


class SqlTooExpensive(errors.BadRequest):
    code = "SQL_TOO_EXPENSIVE"


@dataclasses.dataclass(frozen=True)
class SqlLimits:
    memory_limit_mb: int
    threads: int
    timeout_seconds: float
    max_rows: int

    @classmethod
    def from_settings(cls, settings: Settings) -> SqlLimits:
        """Read the limits from the instance's settings."""
        return cls(memory_limit_mb=settings.sql_memory_limit_mb, threads=settings.sql_threads,
                   timeout_seconds=settings.sql_timeout_seconds, max_rows=settings.sql_max_rows)


@dataclasses.dataclass(frozen=True)
class QueryResult:
    columns: list[dict[str, str]]
    rows: list[dict[str, Any]]
    row_count: int
    truncated: bool
    elapsed_ms: float
    sql: str


def connect(limits: SqlLimits) -> Any:
    """Open the sandboxed in-memory DuckDB connection every query runs in."""
    import duckdb

    connection = duckdb.connect(":memory:", config={
        "enable_external_access": False,
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "allow_community_extensions": False,
        "python_enable_replacements": False,
        "temp_directory": "",
        "memory_limit": f"{limits.memory_limit_mb}MB",
        "threads": limits.threads,
    })
    # DuckDB refuses these two per-connection options at connect time, so they are set here, before the lock.
    # UTC: a TIMESTAMPTZ result must not depend on the zone of whichever machine ran the query.
    connection.execute("SET enable_progress_bar = false")
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute("SET lock_configuration = true")
    return connection


def run_sql(sql: str, tables: dict[str, str], limits: SqlLimits) -> QueryResult:
    """Run one SELECT over ``tables`` (SQL name -> local Parquet path) and return at most ``max_rows`` rows."""
    started = time.perf_counter()
    names, types, rows = _run(sql, tables, limits)
    names = unique_names(names)
    kept = rows[: limits.max_rows]
    return QueryResult(
        columns=[{"name": name, "dtype": dtype} for name, dtype in zip(names, types, strict=True)],
        rows=[{name: json_safe_value(value) for name, value in zip(names, row, strict=True)} for row in kept],
        row_count=len(kept), truncated=len(rows) > limits.max_rows,
        elapsed_ms=round((time.perf_counter() - started) * 1000, 1), sql=sql)


def _run(sql: str, tables: dict[str, str], limits: SqlLimits) -> tuple[list[str], list[str], list]:
    connection = connect(limits)
    try:
        _require_one_select(connection, sql)
        _bound_arrow_threads(limits.threads)
        with tempfile.TemporaryDirectory(prefix="sql-") as workdir:  # for the rare copy ``_dataset`` makes
            for index, (name, path) in enumerate(tables.items()):
                connection.register(name, _dataset(path, os.path.join(workdir, f"{index}.parquet")))
            return _execute(connection, sql, limits)
    finally:
        connection.close()  # drops the registered datasets, and with them any reader still holding a file


def _require_one_select(connection: Any, sql: str) -> None:
    import duckdb

    # The policy already allows only this; DuckDB's own parser agrees before anything is loaded.
    try:
        statements = connection.extract_statements(sql)
    except duckdb.Error as exc:
        raise SqlError(_message(exc)) from None
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise SqlRejected("the SQL engine runs exactly one SELECT statement")


def _bound_arrow_threads(threads: int) -> None:
    """Size Arrow's decode and read-ahead pools to SQL_THREADS, not to the machine's cores.

    Arrow's read-ahead sits outside DuckDB's memory limit and grows with these pools: the 10M-row benchmark
    peaked at 640-670 MB with 8 threads (an 8-vCPU instance's default) against 415-425 MB with 2, and was not
    faster. Process-wide, and the same for every query, since every query runs with the same limits.
    """
    import pyarrow as pa

    if pa.cpu_count() != threads:
        pa.set_cpu_count(threads)
    if pa.io_thread_count() != threads:
        pa.set_io_thread_count(threads)


def _dataset(path: str, copy_path: str) -> Any:
    """Open ``path`` as a lazy Arrow dataset: only its footer is read here, the rows as DuckDB scans them."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    try:
        return ds.dataset(path, format="parquet")
    except pa.ArrowNotImplementedError:
        # Arrow cannot open 128-bit integer columns. Uploads store them as DECIMAL(38, 0)
        # (columns.wide_integers_as_decimal), but Parquet copies written before that may hold them: a copy,
        # streamed and no bigger than the file, converts them the same way.
        import polars as pl

        from common.analysis.columns import wide_integers_as_decimal

        frame = pl.scan_parquet(path)
        if not any(dtype in (pl.Int128, pl.UInt128) for dtype in frame.collect_schema().values()):
            raise
        wide_integers_as_decimal(frame).sink_parquet(copy_path)
        return ds.dataset(copy_path, format="parquet")


def _execute(connection: Any, sql: str, limits: SqlLimits) -> tuple[list[str], list[str], list]:
    import duckdb

    watchdog = _Watchdog(connection, limits.timeout_seconds)
    try:
        with watchdog:
            # One more row than the cap says whether the result was cut; LIMIT lets DuckDB stop early.
            relation = connection.sql(sql).limit(limits.max_rows + 1)
            return list(relation.columns), [str(dtype) for dtype in relation.types], relation.fetchall()
    except duckdb.InterruptException:
        if not watchdog.fired:
            raise
        raise SqlTimeout(f"the query ran longer than the {limits.timeout_seconds:g} s limit and was stopped; "
                         "filter or aggregate earlier", details={"timeout_seconds": limits.timeout_seconds}) from None
    except duckdb.OutOfMemoryException:
        raise SqlTooExpensive(f"the query needs more than the {limits.memory_limit_mb} MB memory limit; "
                              "filter, aggregate or select fewer columns first",
                              details={"memory_limit_mb": limits.memory_limit_mb}) from None
    except (duckdb.InternalException, duckdb.FatalException):
        raise  # DuckDB's own fault, not the query's: a 500 with the traceback logged
    except duckdb.Error as exc:
        raise SqlError(_message(exc)) from None


class _Watchdog:
    """Interrupts the connection's running query once ``seconds`` have passed."""

    def __init__(self, connection: Any, seconds: float):
        self.fired = False
        self._connection = connection
        self._finished = False
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._interrupt)
        self._timer.daemon = True

    def _interrupt(self) -> None:
        with self._lock:  # never interrupt a connection whose query has finished (it is closed next)
            if not self._finished:
                self.fired = True
                self._connection.interrupt()

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        with self._lock:
            self._finished = True
        self._timer.cancel()


def _message(exc: Exception) -> str:
    # DuckDB's first paragraph holds the error and its hint ("Candidate bindings: ...", "Did you mean ...?");
    # the rest is a caret drawing over the SQL. The hint is what lets a model repair the query.
    paragraph = str(exc).strip().split("\n\n")[0]
    return " ".join(line.strip() for line in paragraph.splitlines() if line.strip())


def unique_names(names: list[str]) -> list[str]:
    """Rename repeated result columns (``SELECT a, a``) to ``a``, ``a_2``..., so rows can be objects."""
    taken: set[str] = set()
    unique = []
    for name in names:
        final, suffix = name, 2
        while final in taken:
            final, suffix = f"{name}_{suffix}", suffix + 1
        taken.add(final)
        unique.append(final)
    return unique
