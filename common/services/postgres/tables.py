"""Tables behind a saved connection: list, read a page, create from rows, append or replace, drop.

Every statement is built by SQLAlchemy from ``Table`` objects, so table and column names (spaces, quotes,
unicode, reserved words) are quoted by the dialect and never pasted into SQL text. Each call is one
transaction with the statement timeout set: a write that fails halfway (a value the column type refuses in
the third batch) rolls back, and the table is exactly as it was. Replace deletes the rows and inserts the new
ones in that one transaction rather than swapping in a new table, so grants, views, foreign keys and
indexes that depend on the table survive, and readers see the old rows until the commit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from common import errors
from common.analysis.result_budget import ResultLimits
from common.auth import Tenant
from common.ports import SecretPorts
from common.services.postgres import frames
from common.services.postgres import query as pg_query
from common.services.postgres.connections import check_identifier, engine_for
from common.services.postgres.engines import transaction

if TYPE_CHECKING:
    import polars as pl

WRITE_MODES = ("append", "replace")
DEFAULT_PAGE_ROWS = 100
# r: table, p: partitioned table, v: view, m: materialized view, f: foreign table.
_KINDS = {"r": "table", "p": "table", "v": "view", "m": "materialized_view", "f": "foreign_table"}


def list_tables(pg: SecretPorts, tenant: Tenant, name: str) -> dict[str, Any]:
    """List the tables and views of the connection's schema, with the planner's row estimates."""
    import sqlalchemy as sa

    record, engine = engine_for(pg, tenant, name)
    schema = record.data["schema"]
    listing = sa.text("SELECT c.relname, c.relkind, c.reltuples FROM pg_catalog.pg_class c "
                      "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                      "WHERE n.nspname = :schema AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY c.relname")
    with transaction(engine, pg.settings, read_only=True) as connection:
        found = connection.execute(listing, {"schema": schema}).all()
    # reltuples is -1 until the table is first analysed, and means nothing for a view.
    items = [{"name": relname, "kind": _KINDS[relkind],
              "rows_estimate": int(reltuples) if relkind in "rpm" and reltuples >= 0 else None}
             for relname, relkind, reltuples in found]
    return {"connection": record.key, "schema": schema, "items": items}


def read_rows(pg: SecretPorts, tenant: Tenant, name: str, table: str, *, limit: int, offset: int) -> dict[str, Any]:
    """Return one page of a table's rows (ordered by its primary key when it has one), JSON-safe.

    The page holds at most ``limit`` rows and SQL_MAX_RESULT_BYTES of JSON: a page cut short by the bytes
    says ``has_more`` and holds fewer rows (the next page starts at ``offset`` + its rows).
    """
    import sqlalchemy as sa

    check_identifier(table, "table name")
    record, engine = engine_for(pg, tenant, name)
    settings = pg.settings
    limits = ResultLimits(limit, settings.sql_max_value_bytes, settings.sql_max_result_bytes)
    with transaction(engine, settings, read_only=True) as connection:
        target = _reflect(connection, record.data["schema"], table)
        columns = [{"name": column.name, "type": _type_name(column.type, connection.dialect)}
                   for column in target.columns]
        page = sa.select(target).order_by(*target.primary_key.columns).limit(limit + 1).offset(offset)
        budget = pg_query.fetch_within(connection, pg_query.statement_sql(page, connection), limits,
                                       timeout_seconds=settings.pg_statement_timeout_seconds,
                                       envelope=(record.key, table, columns))
    return {"connection": record.key, "table": table, "columns": columns, "rows": budget.rows, "limit": limit,
            "offset": offset, "has_more": budget.truncated}


def create_table(pg: SecretPorts, tenant: Tenant, name: str, table: str, frame: pl.DataFrame) -> dict[str, Any]:
    """Create ``table`` with the frame's inferred column types and insert its rows, in one transaction."""
    import sqlalchemy as sa

    check_identifier(table, "table name")
    record, engine = engine_for(pg, tenant, name)
    with transaction(engine, pg.settings, read_only=False) as connection:
        target = sa.Table(table, sa.MetaData(), *frames.columns_for(frame), schema=record.data["schema"])
        target.create(connection)
        written = _insert(connection, target, frame)
        columns = [{"name": column.name, "type": _type_name(column.type, connection.dialect)}
                   for column in target.columns]
    return {"connection": record.key, "table": table, "columns": columns, "rows_written": written}


def write_rows(pg: SecretPorts, tenant: Tenant, name: str, table: str, frame: pl.DataFrame,
               mode: str) -> dict[str, Any]:
    """Append the frame's rows to ``table``, or replace its rows with them, in one transaction."""
    check_identifier(table, "table name")
    if mode not in WRITE_MODES:
        raise errors.BadRequest(f"'mode' must be one of {', '.join(WRITE_MODES)}, got {mode!r}")
    record, engine = engine_for(pg, tenant, name)
    with transaction(engine, pg.settings, read_only=False) as connection:
        target = _reflect(connection, record.data["schema"], table)
        unknown = [column for column in frame.columns if column not in target.columns]
        if unknown:
            raise errors.BadRequest(f"table {table!r} has no column(s) {unknown}; columns: "
                                    f"{list(target.columns.keys())}", code="UNKNOWN_COLUMN")
        if mode == "replace":
            connection.execute(target.delete())
        written = _insert(connection, target, frame)
    return {"connection": record.key, "table": table, "mode": mode, "rows_written": written}


def drop_table(pg: SecretPorts, tenant: Tenant, name: str, table: str) -> None:
    """Drop ``table`` from the connection's schema (404 when it does not exist)."""
    import sqlalchemy as sa

    check_identifier(table, "table name")
    record, engine = engine_for(pg, tenant, name)
    with transaction(engine, pg.settings, read_only=False) as connection:
        sa.Table(table, sa.MetaData(), schema=record.data["schema"]).drop(connection)


def _reflect(connection: Any, schema: str, table: str) -> Any:
    import sqlalchemy as sa

    return sa.Table(table, sa.MetaData(), schema=schema, autoload_with=connection)


def _insert(connection: Any, target: Any, frame: pl.DataFrame) -> int:
    written = 0
    for rows in frames.batches(frame):
        connection.execute(target.insert(), rows)
        written += len(rows)
    return written


def _type_name(sql_type: Any, dialect: Any) -> str:
    try:
        return sql_type.compile(dialect=dialect)
    except Exception:  # noqa: BLE001 - a type SQLAlchemy cannot render (an unknown extension type) is just named
        return type(sql_type).__name__
