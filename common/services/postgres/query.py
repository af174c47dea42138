"""Read-only SQL over a saved connection: the dataset SQL policy, then Postgres, with a timeout and a row cap.

The SQL passes ``common.analysis.sql_policy.check_sql`` against the connection schema's tables and columns
(the same policy as dataset SQL: one SELECT, only those tables, no file/network/session functions), is
transpiled from that policy's DuckDB dialect to Postgres with sqlglot, and the Postgres rendering is checked
again, with the Postgres functions that run SQL text or change settings (``set_config``, ``query_to_xml``,
``dblink``, large objects...) refused as well. It then runs in a READ ONLY transaction with
``statement_timeout`` set locally and the search path set to that schema, and at most ``limit`` rows are
fetched. The policy is defence in depth: the read-only transaction and the database user's own grants are
what a query can never get past.
"""

from __future__ import annotations

import re
import time
from typing import Any

from common.analysis.sql_engine import unique_names
from common.analysis.sql_policy import DENIED_FUNCTIONS, DENIED_PREFIXES, DENIED_SUFFIXES, SqlRejected, check_sql
from common.analysis.tables import json_safe_value
from common.auth import Tenant
from common.ports import SecretPorts
from common.services.domain_sql import row_limit, sql_text
from common.services.postgres.connections import engine_for
from common.services.postgres.engines import transaction

POSTGRES_DENIED_PREFIXES = ("set_config", "query_to_", "table_to_", "schema_to_", "database_to_", "cursor_to_",
                            "dblink", "lo_", "txid_", "ts_stat", "ts_rewrite", "binary_upgrade_", "gin_",
                            "brin_", "version")
_CALL_NAME = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(")
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


def fetch(connection: Any, checked_sql: str, max_rows: int) -> tuple[list[str], list[tuple], bool]:
    """Run checked SQL; return (unique column names, at most ``max_rows`` rows, whether more were cut)."""
    result = connection.exec_driver_sql(checked_sql)
    rows = result.fetchmany(max_rows + 1)
    result.close()
    return unique_names(list(result.keys())), [tuple(row) for row in rows[:max_rows]], len(rows) > max_rows


def run_query(pg: SecretPorts, tenant: Tenant, name: str, sql: Any, limit: Any = None) -> dict[str, Any]:
    """Check and run read-only ``sql`` on the connection ``name``; return its columns and rows, JSON-safe."""
    sql = sql_text(sql)
    max_rows = row_limit(limit, pg.settings.pg_max_rows)
    record, engine = engine_for(pg, tenant, name)
    schema = record.data["schema"]
    started = time.monotonic()
    with transaction(engine, pg.settings, read_only=True, schema=schema) as connection:
        checked = checked_postgres_sql(sql, catalog(connection, schema))
        columns, rows, truncated = fetch(connection, checked, max_rows)
    return {"connection": record.key, "columns": [{"name": column} for column in columns],
            "rows": [{column: json_safe_value(value) for column, value in zip(columns, row, strict=True)}
                     for row in rows],
            "row_count": len(rows), "truncated": truncated,
            "elapsed_ms": round((time.monotonic() - started) * 1000, 1), "sql": checked}
