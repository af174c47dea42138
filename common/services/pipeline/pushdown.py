"""Push a question's SQL down to Postgres when every table it reads lives in one saved connection.

Then the query sees whole tables, not the rows loaded at plan time (capped at PG_MAX_ROWS), and Postgres
does the work. The SQL has passed the dataset policy already; its tables are renamed from the question's
SQL names to the real ones, and it runs under the Postgres path's own policy, in a read-only transaction
with a statement timeout (``common.services.postgres.query.run_query``).
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

from common.auth import Tenant
from common.ports import SecretPorts
from common.services.domain_sql import DomainTable


def pushdown_target(sql: str, tables: tuple[DomainTable, ...],
                    all_sql_names: set[str]) -> tuple[str, dict[str, str]] | None:
    """The connection and {sql name: real table} when ``sql`` reads only plain tables of one connection."""
    from common.analysis.sql_policy import tables_read

    used = tables_read(sql) & {name.lower() for name in all_sql_names}
    by_name = {table.sql_name.lower(): table for table in tables}
    if not used or not used <= set(by_name):
        return None
    sources = [by_name[name].dataset.split(":", 2) for name in used]  # "pg:<connection>:<table>"
    connections = {connection for _, connection, _ in sources}
    if len(connections) != 1 or any(table.startswith("query:") or table == "*" for _, _, table in sources):
        return None
    return connections.pop(), {by_name[name].sql_name: by_name[name].dataset.split(":", 2)[2] for name in used}


def run_pushed_down(deps: SecretPorts, tenant: Tenant, sql: str, connection: str, renames: dict[str, str],
                    limit: int) -> dict[str, Any]:
    """Run ``sql`` on the connection with its tables renamed; answer in the dataset SQL's result shape."""
    from common.services.postgres.query import run_query

    result = run_query(deps, tenant, connection, _renamed(sql, renames), limit=min(limit, deps.settings.pg_max_rows))
    columns = [{"name": column["name"], "dtype": _dtype([row[column["name"]] for row in result["rows"]])}
               for column in result["columns"]]
    return {"sql": result["sql"], "columns": columns, "rows": result["rows"], "row_count": result["row_count"],
            "truncated": result["truncated"], "elapsed_ms": result["elapsed_ms"], "engine": "postgres",
            "tables": {sql_name: f"pg:{connection}:{table}" for sql_name, table in renames.items()}}


def _renamed(sql: str, renames: dict[str, str]) -> str:
    import sqlglot
    from sqlglot import exp

    lowered = {name.lower(): real for name, real in renames.items()}
    tree = sqlglot.parse_one(sql, read="duckdb")
    for table in tree.find_all(exp.Table):
        real = lowered.get(table.name.lower())
        if real is not None:
            alias = table.alias or table.name  # columns qualified by the SQL name keep resolving
            table.set("this", exp.to_identifier(real, quoted=True))
            table.set("alias", exp.TableAlias(this=exp.to_identifier(alias, quoted=True)))
    return tree.sql(dialect="duckdb")


def _dtype(values: list[Any]) -> str:
    present = [value for value in values if value is not None]
    if present and all(isinstance(value, bool) for value in present):
        return "Boolean"
    if present and all(isinstance(value, int) and not isinstance(value, bool) for value in present):
        return "Int64"
    if present and all(isinstance(value, (int, float, decimal.Decimal)) for value in present):
        return "Float64"
    if present and all(isinstance(value, (dt.date, dt.datetime)) for value in present):
        return "Datetime"
    return "String"
