"""Runs checked SQL in DuckDB over a domain's tables, inside memory, thread, time, row and byte limits.

Each query runs in its own process (``sql_process``) whose memory is capped at ``SQL_MEMORY_LIMIT_MB`` plus
``PROCESS_HEADROOM_MB`` and which is killed at ``SQL_TIMEOUT_SECONDS``: DuckDB's own memory limit bounds its
buffer manager only, and values built while a query runs (``repeat``, ``format``, a concatenation doubled in a
recursive CTE, ``string_agg``...) are allocated beside it. The process opens a fresh in-memory DuckDB
connection, and each table the query reads is registered as a lazy ``pyarrow.dataset`` over its Parquet copy.
DuckDB streams the file in batches and pushes its projection and filters into the scan: only the columns the
query uses are read, only the row groups its filters can match, and nothing is loaded up front. (Tables used to
be loaded up front as Polars frames, which sat outside DuckDB's memory limit; BENCHMARKS.md has the peak
before and after.) The pushdown makes parsing the query for the columns it names unnecessary, and as DuckDB
sees every column, its binder hints ("Candidate bindings: ...") name all of them.
The connection cannot reach anything else: external access is off (no file, no network, no extension
install or load), Python variables are not scannable as tables, nothing spills to a temporary directory (on
Cloud Run the disk is memory, so the memory limit must be the limit), and the configuration is locked before
any model-written SQL runs, so ``SET`` cannot undo any of it.

The rows are fetched a batch at a time into a ``ResultBudget``: at most ``max_rows`` rows, no value over
``SQL_MAX_VALUE_BYTES``, and the response within ``SQL_MAX_RESULT_BYTES`` (rows past either cap are cut,
``truncated``), so neither the query's process nor the instance ever holds a result larger than that.
Failures a query's author can fix are 400s (``sql_errors``): ``SQL_ERROR`` (DuckDB's own message: unknown
column, bad cast...), ``SQL_TIMEOUT`` and ``SQL_TOO_EXPENSIVE``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from common import errors
from common.analysis import sql_process
from common.analysis.result_budget import ResultBudget, ResultLimits, envelope_bytes
from common.analysis.sql_errors import SqlError, SqlTimeout, SqlTooExpensive
from common.analysis.sql_policy import SqlRejected

if TYPE_CHECKING:
    from common.config import Settings

__all__ = ["QueryResult", "SqlError", "SqlLimits", "SqlTimeout", "SqlTooExpensive", "connect", "query_connection",
           "run_sql", "too_expensive", "unique_names"]

log = logging.getLogger("convoinsight.sql")

# What a query's process may allocate beyond DuckDB's memory limit: Arrow's read-ahead (140-210 MB on the
# 10M-row benchmark), the rows as Python objects, thread stacks. With the pages it shares with the server
# process it was forked from, an instance grows by at most about SQL_MEMORY_LIMIT_MB + 300 MB per query.
PROCESS_HEADROOM_MB = 256
# Rows converted to Python objects at a time: small, so a batch of long values stays far below the caps.
FETCH_ROWS = 128


def setting_default(name: str) -> Any:
    """Return the declared default of setting ``name`` (for limits built without settings, as tests do)."""
    from common.config import SETTINGS

    return next(setting.default for setting in SETTINGS if setting.name == name)


@dataclasses.dataclass(frozen=True)
class SqlLimits:
    memory_limit_mb: int
    threads: int
    timeout_seconds: float
    max_rows: int
    max_value_bytes: int = dataclasses.field(default_factory=lambda: setting_default("sql_max_value_bytes"))
    max_result_bytes: int = dataclasses.field(default_factory=lambda: setting_default("sql_max_result_bytes"))
    concurrency: int = dataclasses.field(default_factory=lambda: setting_default("sql_concurrency"))

    @classmethod
    def from_settings(cls, settings: Settings) -> SqlLimits:
        """Read the limits from the instance's settings."""
        return cls(memory_limit_mb=settings.sql_memory_limit_mb, threads=settings.sql_threads,
                   timeout_seconds=settings.sql_timeout_seconds, max_rows=settings.sql_max_rows,
                   max_value_bytes=settings.sql_max_value_bytes, max_result_bytes=settings.sql_max_result_bytes,
                   concurrency=settings.sql_concurrency)


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


def warm_up() -> None:
    """Open and close one DuckDB database in the launcher: each query's process then starts initialised."""
    import duckdb

    # One thread, so none is left running when the launcher forks (about 40 ms less per query measured).
    connection = duckdb.connect(":memory:", config={"threads": 1})
    connection.execute("SELECT 1").fetchall()
    connection.close()


def run_sql(sql: str, tables: dict[str, str], limits: SqlLimits) -> QueryResult:
    """Run one SELECT over ``tables`` (SQL name -> local Parquet path) in a capped process, within the limits."""
    started = time.perf_counter()
    # The directory is the parent's, so it is removed even when the process is killed.
    with tempfile.TemporaryDirectory(prefix="sql-") as workdir:
        try:
            columns, rows, truncated = sql_process.run_capped(
                _query, (sql, tables, limits, workdir), timeout_seconds=limits.timeout_seconds,
                memory_bytes=(limits.memory_limit_mb + PROCESS_HEADROOM_MB) * 1024 * 1024, slots=limits.concurrency)
        except sql_process.NoSlot:
            raise instance_busy(limits) from None
        except sql_process.ProcessTimedOut:
            raise SqlTimeout(f"the query ran longer than the {limits.timeout_seconds:g} s limit and was stopped; "
                             "filter or aggregate earlier", details={"timeout_seconds": limits.timeout_seconds}) \
                from None
        except sql_process.ProcessDied:
            # The kernel's OOM killer, or a C++ allocation failure DuckDB did not catch: either way, memory.
            log.warning("a SQL query's process ended without answering")
            raise too_expensive(limits) from None
    return QueryResult(columns=columns, rows=rows, row_count=len(rows), truncated=truncated,
                       elapsed_ms=round((time.perf_counter() - started) * 1000, 1), sql=sql)


def instance_busy(limits: SqlLimits) -> errors.ServiceUnavailable:
    """The error of a query that found every one of this instance's SQL slots taken until its deadline."""
    return errors.ServiceUnavailable(f"this server is running its {limits.concurrency} SQL queries at once; try "
                                     "again in a moment", code="SQL_BUSY",
                                     details={"concurrency": limits.concurrency})


def too_expensive(limits: SqlLimits) -> SqlTooExpensive:
    """The error of a query that needed more memory than its limit."""
    return SqlTooExpensive(f"the query needs more than the {limits.memory_limit_mb} MB memory limit; filter, "
                           "aggregate or select fewer columns first, and build no long values",
                           details={"memory_limit_mb": limits.memory_limit_mb})


def _query(sql: str, tables: dict[str, str], limits: SqlLimits, workdir: str) -> tuple[list, list, bool]:
    """In the query's process: open the connection, register the tables, run and fetch within the budget."""
    with query_connection(sql, tables, limits, workdir) as connection:
        return _fetch(connection, sql, limits, list(tables))


@contextlib.contextmanager
def query_connection(sql: str, tables: dict[str, str], limits: SqlLimits, workdir: str) -> Iterator[Any]:
    """In a query's process: a locked connection with ``tables`` registered, for one checked SELECT; what fails
    inside (DuckDB's errors, memory) becomes the query author's 400, and the connection is closed after.

    Every consumer of a query's rows (an answer's budgeted fetch, a download's file) goes through this, so each
    runs under the same limits and sandbox.
    """
    import duckdb

    connection = connect(limits)
    try:
        _require_one_select(connection, sql)
        _bound_arrow_threads(limits.threads)
        for index, (name, path) in enumerate(tables.items()):
            connection.register(name, _dataset(path, os.path.join(workdir, f"{index}.parquet")))
        yield connection
    except (duckdb.OutOfMemoryException, MemoryError):
        raise too_expensive(limits) from None
    except (duckdb.InternalException, duckdb.FatalException):
        raise  # DuckDB's own fault, not the query's: a 500 with the traceback logged
    except duckdb.Error as exc:
        raise SqlError(_message(exc)) from None
    except FileNotFoundError:
        # A table's file removed while it was read (a re-upload won the race): the caller lists the domain again.
        raise errors.NotFound("a table's file was removed while it was read") from None
    except OSError as exc:
        if str(exc).startswith("Out of Memory"):  # a batch too large for the cap, passed on by Arrow's reader
            raise too_expensive(limits) from None
        raise
    finally:
        connection.close()  # drops the registered datasets, and with them any reader still holding a file


def _fetch(connection: Any, sql: str, limits: SqlLimits, table_names: list[str]) -> tuple[list, list, bool]:
    """Stream at most ``max_rows + 1`` rows into the result budget, and stop as soon as it is full."""
    # One more row than the cap says whether the result was cut; LIMIT lets DuckDB stop early (a top-N for an
    # ORDER BY, not a whole sort). The relation renders the LIMIT around the query as SQL, which streams.
    cursor = connection.execute(connection.sql(sql).limit(limits.max_rows + 1).sql_query())
    names = unique_names([column[0] for column in cursor.description])
    columns = [{"name": name, "dtype": str(column[1])} for name, column in zip(names, cursor.description, strict=True)]
    envelope = envelope_bytes(columns, sql, {name: name for name in table_names})
    budget = ResultBudget(names, ResultLimits(limits.max_rows, limits.max_value_bytes, limits.max_result_bytes),
                          envelope=envelope)
    while True:
        batch = cursor.fetchmany(FETCH_ROWS)
        if not budget.add(batch) or len(batch) < FETCH_ROWS:
            return columns, budget.rows, budget.truncated


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
    faster. Set in the query's own process, before its first scan.
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
