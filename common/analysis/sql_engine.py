"""Runs checked SQL in DuckDB over a domain's tables, inside memory, thread, time and row limits.

Each query gets a fresh in-memory DuckDB connection. The tables it reads are loaded from their Parquet copies
as Polars frames (only the columns the query names, when sqlglot can tell) and registered through Arrow.
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
import threading
import time
from typing import Any

from common import errors
from common.analysis.sql_policy import SqlRejected
from common.analysis.tables import json_safe_value


class SqlError(errors.BadRequest):
    """DuckDB refused or failed the query (binder, catalog, conversion errors...)."""

    code = "SQL_ERROR"


class _PrunedBinderError(SqlError):
    """A binder error while only some columns were loaded: it may name a column that was left out."""


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
    def from_settings(cls, settings: Any) -> SqlLimits:
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
    try:
        names, types, rows = _run(sql, tables, limits, prune=True)
    except _PrunedBinderError:
        # DuckDB saw only the columns the query names, so its hints ("Candidate bindings: ...") would list only
        # those; run once more with every column, for the right answer or the error a model can repair from.
        names, types, rows = _run(sql, tables, limits, prune=False)
    names = unique_names(names)
    kept = rows[: limits.max_rows]
    return QueryResult(
        columns=[{"name": name, "dtype": dtype} for name, dtype in zip(names, types, strict=True)],
        rows=[{name: json_safe_value(value) for name, value in zip(names, row, strict=True)} for row in kept],
        row_count=len(kept), truncated=len(rows) > limits.max_rows,
        elapsed_ms=round((time.perf_counter() - started) * 1000, 1), sql=sql)


def _run(sql: str, tables: dict[str, str], limits: SqlLimits, *, prune: bool) -> tuple[list[str], list[str], list]:
    connection = connect(limits)
    try:
        _require_one_select(connection, sql)
        pruned = False
        for name, table, all_columns in _load_tables(sql, tables, prune):
            connection.register(name, table)
            pruned = pruned or not all_columns
        return _execute(connection, sql, limits, pruned)
    finally:
        connection.close()


def _require_one_select(connection: Any, sql: str) -> None:
    import duckdb

    # The policy already allows only this; DuckDB's own parser agrees before anything is loaded.
    try:
        statements = connection.extract_statements(sql)
    except duckdb.Error as exc:
        raise SqlError(_message(exc)) from None
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise SqlRejected("the SQL engine runs exactly one SELECT statement")


def _load_tables(sql: str, tables: dict[str, str], prune: bool) -> list[tuple[str, Any, bool]]:
    """Return (name, Arrow table, whether it holds every column) per table."""
    import polars as pl

    schemas = {name: list(pl.read_parquet_schema(path)) for name, path in tables.items()}
    needed = needed_columns(sql, schemas) if prune else schemas
    return [(name, pl.scan_parquet(path).select(needed[name]).collect().to_arrow(),
             len(needed[name]) == len(schemas[name])) for name, path in tables.items()]


def needed_columns(sql: str, schemas: dict[str, list[str]]) -> dict[str, list[str]]:
    """Return, per table, the columns ``sql`` can read: those it names, or all when it reads whole rows."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except (SqlglotError, RecursionError):
        return schemas
    if _reads_whole_rows(tree):
        return schemas
    named = {identifier.name.lower() for identifier in tree.find_all(exp.Identifier)}
    # A table is registered with at least one column, so COUNT(*) still sees every row.
    return {table: [column for column in columns if column.lower() in named] or columns[:1]
            for table, columns in schemas.items()}


def _reads_whole_rows(tree: Any) -> bool:
    from sqlglot import exp

    if any(not isinstance(star.parent, exp.Count) for star in tree.find_all(exp.Star)):
        return True  # SELECT *, t.*, * EXCLUDE, COLUMNS(*)
    if any(True for _ in tree.find_all(exp.Columns)):
        return True  # COLUMNS('regex') picks columns by pattern
    if any(join.method == "NATURAL" for join in tree.find_all(exp.Join)):
        return True
    # A bare table name or alias used as a value is the whole row as a struct (SELECT t FROM t).
    sources = {table.alias_or_name.lower() for table in tree.find_all(exp.Table)}
    sources |= {table.name.lower() for table in tree.find_all(exp.Table)}
    return any(not column.table and column.name.lower() in sources for column in tree.find_all(exp.Column))


def _execute(connection: Any, sql: str, limits: SqlLimits, pruned: bool) -> tuple[list[str], list[str], list]:
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
    except duckdb.BinderException as exc:
        raise (_PrunedBinderError if pruned else SqlError)(_message(exc)) from None
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
