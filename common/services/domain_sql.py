"""SQL over a domain: its tables under SQL names, the policy check, and DuckDB, for users and agents alike.

Every tabular dataset of the domain is a table named by ``table_names`` (``Sales 2024.csv`` -> ``sales_2024``,
``book.xlsx#Q1`` -> ``book_q1``). A query is checked against the domain's schema, only the Parquet copies it
reads are fetched, and it runs inside the configured limits. A reader that loses a race with a re-upload (its
version's blobs were just removed) lists the domain again and retries, as ``dataset_reads`` does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from common import errors, scratch
from common.analysis.sql_dialects import DEFAULT_DIALECT, dialect_name, to_duckdb
from common.analysis.sql_engine import SqlLimits, run_sql
from common.analysis.sql_policy import check_sql, tables_read
from common.auth import Tenant
from common.names import Domain
from common.ports import DataPorts
from common.services import dataset_reads
from common.services.datasets import sql_table_names

MAX_SQL_CHARS = 20_000
DEFAULT_LIMIT = 1000
_ATTEMPTS = 3
T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class DomainTable:
    sql_name: str
    dataset: str
    table: str
    sheet: str | None
    rows: int
    columns: list[dict]
    parquet_key: str
    profile_key: str
    version: str | None = None  # the dataset's version listed (a Postgres table's: "live"); None in older jobs


def domain_tables(deps: DataPorts, tenant: Tenant, domain: Domain) -> list[DomainTable]:
    """Return the domain's tables under their SQL names, or raise a 404 when it has none."""
    records = dataset_reads.list_records(deps, tenant, domain)
    if not records:
        raise errors.NotFound(f"domain {domain!r} not found", code="DOMAIN_NOT_FOUND")
    found = [(record.data, table) for record in records if record.data.get("kind") == "table"
             for table in record.data.get("tables", [])]
    if not found:
        raise errors.NotFound(f"domain {domain!r} has no tables to query, only attachments", code="NO_TABLES")
    sql_names = sql_table_names(records)[domain]  # the names every listing shows, from the same function
    tables = [DomainTable(sql_names[table["name"]], data["name"], table["name"], table.get("sheet"), table["rows"],
                          table["columns"], table["parquet_key"], table["profile_key"], data["version"])
              for data, table in found]
    return sorted(tables, key=lambda table: table.sql_name)


def list_tables(deps: DataPorts, tenant: Tenant, domain: Domain) -> dict:
    """Return the domain's SQL tables with their columns, for users and the model that writes the SQL."""
    tables = domain_tables(deps, tenant, domain)
    return {"domain": domain, "tables": [
        {"name": table.sql_name, "table_name": table.sql_name, "dataset": table.dataset, "table": table.table,
         "sheet": table.sheet, "rows": table.rows, "columns": table.columns} for table in tables]}


def query(deps: DataPorts, tenant: Tenant, domain: Domain, sql: Any, limit: Any = None, *,
          extra_tables: tuple[DomainTable, ...] = (), dialect: Any = None) -> dict:
    """Transpile ``sql`` from ``dialect``, check and run it over the domain's tables (and ``extra_tables``,
    e.g. loaded from Postgres); return its columns, rows, the SQL that ran and the rewrites made."""
    limits = dataclasses.replace(SqlLimits.from_settings(deps.settings),
                                 max_rows=row_limit(limit, deps.settings.sql_max_rows))
    sql = sql_text(sql)
    dialect = dialect_name(dialect)
    sql, rewrites = to_duckdb(sql, dialect)

    def run(checked: str, needed: list[DomainTable]) -> Any:
        with local_copies(deps, needed) as paths:
            try:
                return run_sql(checked, paths, limits)
            except FileNotFoundError:
                raise errors.NotFound("a table's file was removed while it was read") from None

    result, needed = run_on_tables_read(deps, tenant, domain, sql, run, extra_tables=extra_tables)
    return {**dataclasses.asdict(result), "tables": {table.sql_name: table.table for table in needed},
            "dialect": dialect, "rewrites": rewrites}


def run_on_tables_read(deps: DataPorts, tenant: Tenant, domain: Domain, sql: str,
                       run: Callable[[str, list[DomainTable]], T], *,
                       extra_tables: tuple[DomainTable, ...] = ()) -> tuple[T, list[DomainTable]]:
    """Check DuckDB ``sql`` against the domain's tables and ``run(checked_sql, tables_it_reads)``; return what
    ``run`` returned and those tables. A version replaced between the listing and the read (``run`` raises
    NotFound) lists the domain again, a few times."""
    for attempt in range(_ATTEMPTS):
        checked, tables = check(deps, tenant, domain, sql, extra_tables=extra_tables)
        used = tables_read(checked)
        needed = [table for table in tables if table.sql_name.lower() in used]
        try:
            return run(checked, needed), needed
        except errors.NotFound:
            if attempt == _ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def check(deps: DataPorts, tenant: Tenant, domain: Domain, sql: str, *,
          extra_tables: tuple[DomainTable, ...] = (), dialect: str = DEFAULT_DIALECT) -> tuple[str, list[DomainTable]]:
    """Check ``sql`` (DuckDB, or transpiled from ``dialect``) against the domain's tables (and ``extra_tables``);
    return the SQL to run and the tables."""
    sql = to_duckdb(sql, dialect_name(dialect))[0]  # idempotent on SQL that ``query`` already rewrote
    tables = _tables_with(deps, tenant, domain, extra_tables)
    schema = {table.sql_name: [column["name"] for column in table.columns] for table in tables}
    return check_sql(sql, schema), tables


def _tables_with(deps: DataPorts, tenant: Tenant, domain: Domain,
                 extra_tables: tuple[DomainTable, ...]) -> list[DomainTable]:
    if not extra_tables:
        return domain_tables(deps, tenant, domain)
    try:
        return domain_tables(deps, tenant, domain) + list(extra_tables)
    except errors.NotFound:  # a question over Postgres tables alone needs no uploaded dataset
        return list(extra_tables)


@contextlib.contextmanager
def local_copies(deps: DataPorts, tables: list[DomainTable]) -> Iterator[dict[str, str]]:
    """The tables' Parquet copies in a folder of the request's (SQL name -> path), removed afterwards."""
    with scratch.directory("sql-") as workdir:
        paths = {}
        for index, table in enumerate(tables):
            # Every version names its Parquet copy table-<n>.parquet, so each download gets its own directory.
            table_dir = os.path.join(workdir, str(index))
            os.mkdir(table_dir)
            paths[table.sql_name] = dataset_reads.local_copy(deps, table.parquet_key, table_dir)
        yield paths


def sql_text(sql: Any) -> str:
    """Check the type and size of a request's SQL (dataset SQL and Postgres SQL alike)."""
    if sql is None:
        raise errors.BadRequest("the field 'sql' is required", code="MISSING_FIELD")
    if not isinstance(sql, str) or not sql.strip():
        raise errors.BadRequest("'sql' must be a non-empty string")
    if len(sql) > MAX_SQL_CHARS:
        raise errors.BadRequest(f"'sql' may be at most {MAX_SQL_CHARS} characters, got {len(sql)}")
    return sql


def row_limit(limit: Any, max_rows: int) -> int:
    """Check a request's row limit: an integer from 1 to ``max_rows`` (default the smaller of 1000 and it)."""
    if limit is None:
        return min(DEFAULT_LIMIT, max_rows)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= max_rows:
        raise errors.BadRequest(f"'limit' must be an integer from 1 to {max_rows}, got {limit!r}")
    return limit
