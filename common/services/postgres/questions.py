"""Postgres tables for a question: ``pg:`` dataset tokens loaded, capped, into Parquet files the engine reads.

Tokens (a question's ``datasets``):
- ``pg:<connection>:<table>``: one table or view of a saved connection's schema;
- ``pg:<connection>:*``: its tables and views, the first ``MAX_TABLES_PER_WILDCARD`` by name;
- the original API's forms, on the tenant's connection named ``default``: ``pg:*``, ``pg:table:<table>`` and
  ``pg:query:<alias>|<SQL>``.
Every table is read with at most ``PG_MAX_ROWS`` rows (``truncated`` says when more were cut), and a query's
SQL goes through the same policy and read-only transaction as ``POST /api/v1/postgres/{name}/query``. Each
connection is read in one read-only transaction, so its tables come from one snapshot.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from common import errors
from common.analysis.result_budget import ResultLimits
from common.analysis.table_names import table_names
from common.analysis.tables import json_safe_value
from common.auth import Tenant
from common.ports import SecretPorts
from common.services.postgres import query as pg_query
from common.services.postgres.connections import check_identifier, check_name, engine_for
from common.services.postgres.engines import transaction

DEFAULT_CONNECTION = "default"
MAX_TABLES_PER_WILDCARD = 20
MAX_TOKENS = 50
_PLAIN_TYPES = (type(None), bool, int, float, str, bytes)


@dataclasses.dataclass(frozen=True)
class PgTable:
    sql_name: str  # the name the question's SQL uses for it, unique within one call
    path: str  # its rows as a Parquet file inside the workdir
    columns: list[dict[str, str]]  # [{name, dtype}] in the table's order
    rows: int
    truncated: bool  # more than PG_MAX_ROWS rows existed; only the first were loaded
    source: str  # pg:<connection>:<table> or pg:<connection>:query:<alias>
    connection: str
    table: str | None  # the Postgres table or view; None for a query


@dataclasses.dataclass(frozen=True)
class _Wanted:
    connection: str
    table: str | None = None  # None with sql None: every table of the connection
    alias: str | None = None
    sql: str | None = None


def parse_token(token: Any) -> _Wanted:
    """Read one ``pg:`` dataset token (see the module docstring), or raise a 400 naming the forms."""
    if not isinstance(token, str) or not token.startswith("pg:"):
        raise errors.BadRequest(f"{token!r} is not a pg: dataset token", code="INVALID_PG_TOKEN")
    rest = token[3:]
    if rest == "*":
        return _Wanted(DEFAULT_CONNECTION)
    head, colon, tail = rest.partition(":")
    if not colon or not tail:
        raise errors.BadRequest(f"{token!r}: use pg:<connection>:<table>, pg:<connection>:*, pg:*, "
                                f"pg:table:<table> or pg:query:<alias>|<SQL>", code="INVALID_PG_TOKEN")
    if head == "table":
        return _Wanted(DEFAULT_CONNECTION, table=check_identifier(tail, "table name"))
    if head == "query":
        alias, bar, sql = tail.partition("|")
        if not bar:
            raise errors.BadRequest(f"{token!r}: a query token is pg:query:<alias>|<SQL>", code="INVALID_PG_TOKEN")
        return _Wanted(DEFAULT_CONNECTION, alias=check_identifier(alias, "query alias"), sql=pg_query.sql_text(sql))
    if tail == "*":
        return _Wanted(check_name(head))
    return _Wanted(check_name(head), table=check_identifier(tail, "table name"))


def load_for_question(pg: SecretPorts, tenant: Tenant, tokens: list[str], workdir: str) -> list[PgTable]:
    """Load the tables the ``pg:`` tokens name, each capped at PG_MAX_ROWS, as Parquet files in ``workdir``."""
    if len(tokens) > MAX_TOKENS:
        raise errors.BadRequest(f"at most {MAX_TOKENS} pg: tokens per question", code="INVALID_PG_TOKEN")
    wanted = list(dict.fromkeys(parse_token(token) for token in tokens))  # every token checked before any I/O
    loaded: list[tuple[str, str | None, str, list[str], list[tuple], bool]] = []
    for connection in dict.fromkeys(item.connection for item in wanted):
        loaded += _load_connection(pg, tenant, connection, [item for item in wanted if item.connection == connection])
    sql_names = _sql_names([label for _, _, label, _, _, _ in loaded])
    os.makedirs(workdir, exist_ok=True)
    tables = []
    for index, (connection, table, label, columns, rows, truncated) in enumerate(loaded):
        path = os.path.join(workdir, f"pg_{index}.parquet")
        frame = _frame(columns, rows)
        frame.write_parquet(path)
        source = f"pg:{connection}:{table}" if table is not None else f"pg:{connection}:query:{label}"
        tables.append(PgTable(sql_name=sql_names[index], path=path,
                              columns=[{"name": name, "dtype": str(dtype)} for name, dtype in frame.schema.items()],
                              rows=frame.height, truncated=truncated, source=source, connection=connection,
                              table=table))
    return tables


def _sql_names(labels: list[str]) -> list[str]:
    """Name each table for SQL as dataset tables are named; the same table twice (two connections) gets _2."""
    # table_names reads file names: the ".pg" suffix keeps a dot inside a table's own name from looking like one.
    bases = table_names([(f"{label}.pg", None) for label in set(labels)])
    reserved, used, names = set(bases.values()), set(), []
    for label in labels:
        base = bases[f"{label}.pg"]
        name, suffix = base, 2
        while name in used or (name != base and name in reserved):
            name, suffix = f"{base}_{suffix}", suffix + 1
        used.add(name)
        names.append(name)
    return names


def _load_connection(pg: SecretPorts, tenant: Tenant, name: str, wanted: list[_Wanted]) -> list[tuple]:
    import sqlalchemy as sa

    record, engine = engine_for(pg, tenant, name)
    settings = pg.settings
    schema, cap = record.data["schema"], settings.pg_max_rows
    # Each table a question reads is held to the SQL result's byte caps too: pg8000 holds whole rows.
    limits = ResultLimits(cap, settings.sql_max_value_bytes, settings.sql_max_result_bytes)
    timeout = settings.pg_statement_timeout_seconds
    loaded = []
    with transaction(engine, pg.settings, read_only=True, schema=schema) as connection:
        known = pg_query.catalog(connection, schema)
        for item in wanted:
            if item.sql is not None:
                checked = pg_query.checked_postgres_sql(item.sql, known)
                loaded.append((name, None, item.alias, *pg_query.fetch(connection, checked, cap, limits=limits,
                                                                        timeout_seconds=timeout)))
                continue
            names = [item.table] if item.table is not None else sorted(known)[:MAX_TABLES_PER_WILDCARD]
            for table in names:
                if table not in known:
                    raise errors.NotFound(f"connection {name!r} has no table {table!r} in schema {schema!r}",
                                          code="TABLE_NOT_FOUND")
                target = sa.Table(table, sa.MetaData(), schema=schema, autoload_with=connection)
                statement = pg_query.statement_sql(sa.select(target).limit(cap + 1), connection)
                loaded.append((name, table, table, *pg_query.fetch(connection, statement, cap, limits=limits,
                                                                   timeout_seconds=timeout)))
    return loaded


def _frame(columns: list[str], rows: list[tuple]) -> Any:
    import polars as pl

    data = {name: [_plain(row[index]) for row in rows] for index, name in enumerate(columns)}
    frame = pl.DataFrame(data, strict=False)
    # An empty result has no values to infer from: its columns are text.
    return frame.with_columns(pl.col(pl.Null).cast(pl.String))


def _plain(value: Any) -> Any:
    """Keep values Parquet stores natively; JSON becomes text, and anything else (uuid, inet, ranges) its text."""
    import datetime
    import decimal

    if isinstance(value, _PLAIN_TYPES + (datetime.date, datetime.time, datetime.timedelta, decimal.Decimal)):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(json_safe_value(value), ensure_ascii=False)
    return str(value)
