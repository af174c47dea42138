"""Read-only SQL over a saved connection: the dataset SQL policy, then Postgres, within time, row and byte limits.

The SQL passes ``common.analysis.sql_policy.check_sql`` against the connection schema's tables and columns
(the same policy as dataset SQL: one SELECT, only those tables, no file/network/session functions), is
transpiled from that policy's DuckDB dialect to Postgres with sqlglot, and the Postgres rendering is checked
again, with the Postgres functions that run SQL text or change settings (``set_config``, ``query_to_xml``,
``dblink``, large objects...) refused as well. It then runs in a READ ONLY transaction with
``statement_timeout`` set locally and the search path set to that schema. The policy is defence in depth: the
read-only transaction and the database user's own grants are what a query can never get past.

The rows come through a server-side cursor, a batch per FETCH, into a ``ResultBudget`` (row cap, value cap,
result bytes), and the whole read shares one deadline: each FETCH runs with what is left of the statement
timeout. pg8000 reads a whole row (and a whole FETCH) before anyone can look at it, so Postgres itself keeps
big rows off the wire: the query is wrapped so that once the running total of its values' text passes
SQL_MAX_RESULT_BYTES, the rows still come but as NULLs, flagged, and the reader stops there. A single 500 MB
value is thus refused on the server (``SQL_TOO_EXPENSIVE``) and never sent, and at most the budget plus one
batch of flagged NULL rows crosses. The cursor reads ``max_rows + 1`` rows at most (pg8000 would otherwise
buffer the whole result of a plain execute before the first row is looked at).
"""

from __future__ import annotations

import re
import time
from typing import Any

from common.analysis.result_budget import ResultBudget, ResultLimits, envelope_bytes
from common.analysis.sql_engine import setting_default, unique_names
from common.analysis.sql_errors import SqlTimeout, SqlTooExpensive
from common.analysis.sql_policy import DENIED_FUNCTIONS, DENIED_PREFIXES, DENIED_SUFFIXES, SqlRejected, check_sql
from common.auth import Tenant
from common.ports import SecretPorts
from common.services.domain_sql import row_limit, sql_text
from common.services.postgres.connections import engine_for
from common.services.postgres.engines import transaction

POSTGRES_DENIED_PREFIXES = ("set_config", "query_to_", "table_to_", "schema_to_", "database_to_", "cursor_to_",
                            "dblink", "lo_", "txid_", "ts_stat", "ts_rewrite", "binary_upgrade_", "gin_",
                            "brin_", "version")
_CALL_NAME = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(")
# Rows per FETCH: few round trips; each batch holds at most the byte budget plus this many flagged NULL rows.
FETCH_ROWS = 1000
CURSOR = "convoinsight_rows"
_WRITES = ("Insert", "Update", "Delete", "Merge", "Create", "Drop", "Alter", "TruncateTable", "Command", "Copy",
           "Into", "Set", "Transaction", "Commit", "Rollback", "Pragma", "Grant", "Revoke", "Comment", "Analyze")


def checked_postgres_sql(sql: str, schema: dict[str, list[str]]) -> str:
    """Return ``sql`` as the checked Postgres query to run, or raise ``SqlRejected`` saying why."""
    import sqlglot
    from sqlglot.errors import SqlglotError

    normalised = check_sql(sql, schema)
    try:
        rendered = sqlglot.transpile(normalised, read="duckdb", write="postgres")
    except SqlglotError as exc:
        raise SqlRejected(f"the SQL cannot be written for Postgres: {str(exc).splitlines()[0]}") from None
    if len(rendered) != 1:
        raise SqlRejected("exactly one statement is allowed")
    _check_rendering(rendered[0], schema)
    return rendered[0]


def _check_rendering(sql: str, schema: dict[str, list[str]]) -> None:
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        statements = sqlglot.parse(sql, read="postgres")
    except SqlglotError:
        raise SqlRejected("the Postgres rendering of the SQL could not be checked") from None
    tree = statements[0] if len(statements) == 1 else None
    if not isinstance(tree, exp.Query) or tree.find(*(getattr(exp, name) for name in _WRITES)):
        raise SqlRejected("only one read-only SELECT query is allowed")
    for function in tree.find_all(exp.Func):
        for name in _function_names(function):
            if (name in DENIED_FUNCTIONS or name.startswith(DENIED_PREFIXES + POSTGRES_DENIED_PREFIXES)
                    or name.endswith(DENIED_SUFFIXES)):
                raise SqlRejected(f"function {name} is not allowed")
    known = {table.lower() for table in schema}
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        if isinstance(table.this, exp.Func):
            continue  # a table function check_sql allowed (range, generate_series, unnest)
        if table.args.get("db") or table.name.lower() not in known | ctes:
            raise SqlRejected(f"table {table.sql(dialect='postgres')} is not one of this connection's tables")


def _function_names(function: Any) -> set[str]:
    from sqlglot import exp

    # sqlglot's name for a function can differ from the one Postgres is sent (VERSION() is CurrentVersion).
    names = {(function.name if isinstance(function, exp.Anonymous) else function.sql_name()).lower()}
    rendered = _CALL_NAME.match(function.sql(dialect="postgres", comments=False))
    if rendered:
        names.add(rendered.group(1).lower())
    return names


def catalog(connection: Any, schema: str) -> dict[str, list[str]]:
    """Return {table or view: [columns]} of ``schema``, as the database user may see them."""
    import sqlalchemy as sa

    listing = sa.text("SELECT table_name, column_name FROM information_schema.columns "
                      "WHERE table_schema = :schema ORDER BY table_name, ordinal_position")
    tables: dict[str, list[str]] = {}
    for table, column in connection.execute(listing, {"schema": schema}):
        tables.setdefault(table, []).append(column)
    return tables


def fetch(connection: Any, checked_sql: str, max_rows: int, *, limits: ResultLimits | None = None,
          timeout_seconds: float | None = None) -> tuple[list[str], list[tuple], bool]:
    """Run checked SQL; return (unique column names, the raw rows that fit the limits, whether more were cut).

    Without ``limits``, the row cap is ``max_rows`` and the byte caps are the settings' defaults.
    """
    limits = limits or ResultLimits(max_rows, setting_default("sql_max_value_bytes"),
                                    setting_default("sql_max_result_bytes"))
    timeout = timeout_seconds or setting_default("pg_statement_timeout_seconds")
    budget = fetch_within(connection, checked_sql, limits, timeout_seconds=timeout)
    return budget.names, budget.raw_rows, budget.truncated


def statement_sql(statement: Any, connection: Any) -> str:
    """Render a SELECT built by SQLAlchemy (tables, columns, integer limits) as SQL text ``fetch`` can wrap."""
    return str(statement.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))


def fetch_within(connection: Any, sql: str, limits: ResultLimits, *, timeout_seconds: float,
                 envelope: tuple = ()) -> ResultBudget:
    """Read ``sql``'s rows through a cursor into a budget (``envelope``: the rest of the response), one deadline."""
    deadline = time.monotonic() + timeout_seconds
    probe = connection.exec_driver_sql(f"SELECT * FROM ({sql}\n) AS q LIMIT 0")
    names = unique_names(list(probe.keys()))
    probe.close()
    budget = ResultBudget(names, limits, envelope=envelope_bytes(*envelope, [{"name": name} for name in names]))
    connection.exec_driver_sql(f"DECLARE {CURSOR} NO SCROLL CURSOR FOR "
                               f"{guarded(sql, len(names), limits.max_rows, limits.max_result_bytes)}")
    while _read_batch(connection, budget, deadline, timeout_seconds):
        pass
    connection.exec_driver_sql(f"CLOSE {CURSOR}")
    _statement_timeout(connection, timeout_seconds * 1000)  # what the transaction began with, for what follows
    return budget


def guarded(sql: str, columns: int, max_rows: int, max_bytes: int) -> str:
    """Wrap ``sql`` so Postgres sends the rows past ``max_bytes`` of text as NULLs, with a flag that says so."""
    aliases = [f"c{index}" for index in range(columns)]
    kept = "".join(f"CASE WHEN s.row_fits THEN s.{alias} END AS {alias}, " for alias in aliases)
    # Each value's own text length: octet_length of a text value is read from its header, where the text of the
    # whole row (q::text) would quote every character of a 500 MB value first.
    size = " + ".join(f"coalesce(octet_length(q.{alias}::text), 0)" for alias in aliases) or "0"
    # Positional aliases: the query's own names may repeat. OFFSET 0 keeps Postgres from inlining the query into
    # the wrapper, where each reference to a column would compute its expression again.
    renamed = f"q({', '.join(aliases)})" if aliases else "q"
    return (f"SELECT {kept}s.row_fits FROM (SELECT q.*, sum({size}) OVER (ROWS BETWEEN UNBOUNDED PRECEDING AND "
            f"CURRENT ROW) <= {int(max_bytes)} AS row_fits FROM (SELECT * FROM ({sql}\n) AS u OFFSET 0) AS {renamed}"
            f") AS s LIMIT {int(max_rows) + 1}")


def _read_batch(connection: Any, budget: ResultBudget, deadline: float, timeout_seconds: float) -> bool:
    """FETCH one batch, with what is left of the deadline; return whether to fetch another."""
    remaining_ms = int((deadline - time.monotonic()) * 1000)
    if remaining_ms <= 0:
        raise SqlTimeout(f"the query ran longer than the {timeout_seconds:g} s limit and was stopped",
                         details={"timeout_seconds": timeout_seconds})
    _statement_timeout(connection, remaining_ms)
    rows = connection.exec_driver_sql(f"FETCH FORWARD {FETCH_ROWS} FROM {CURSOR}").fetchall()
    fitting = [row[:-1] for row in rows if row[-1]]  # once one row does not fit, no later row does
    cut = len(fitting) < len(rows)
    if cut and not fitting and not budget.rows:
        raise SqlTooExpensive(f"one row of the result is more than the {budget.limits.max_result_bytes}-byte "
                              "result limit; select fewer or shorter columns",
                              details={"max_result_bytes": budget.limits.max_result_bytes})
    if not budget.add(fitting):
        return False
    if cut:
        budget.truncated = True
        return False
    return len(rows) == FETCH_ROWS


def _statement_timeout(connection: Any, milliseconds: float) -> None:
    import sqlalchemy as sa

    connection.execute(sa.select(sa.func.set_config("statement_timeout", str(int(milliseconds)), True)))


def run_query(pg: SecretPorts, tenant: Tenant, name: str, sql: Any, limit: Any = None) -> dict[str, Any]:
    """Check and run read-only ``sql`` on the connection ``name``; return its columns and rows, JSON-safe."""
    sql = sql_text(sql)
    settings = pg.settings
    limits = ResultLimits(row_limit(limit, settings.pg_max_rows), settings.sql_max_value_bytes,
                          settings.sql_max_result_bytes)
    record, engine = engine_for(pg, tenant, name)
    schema = record.data["schema"]
    started = time.monotonic()
    with transaction(engine, settings, read_only=True, schema=schema) as connection:
        checked = checked_postgres_sql(sql, catalog(connection, schema))
        budget = fetch_within(connection, checked, limits, timeout_seconds=settings.pg_statement_timeout_seconds,
                              envelope=(record.key, checked))
    return {"connection": record.key, "columns": [{"name": column} for column in budget.names],
            "rows": budget.rows, "row_count": len(budget.rows), "truncated": budget.truncated,
            "elapsed_ms": round((time.monotonic() - started) * 1000, 1), "sql": checked}
