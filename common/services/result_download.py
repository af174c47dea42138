"""A result table as a file to take away (CSV, XLSX, Parquet): a question's whole result, or a domain query's.

A question's download runs the SQL behind its answer again, through the SQL policy again, over the very
dataset versions the answer read (``answer_tables``: 409/410 when one was replaced or deleted since, never
other data in silence), held not to SQL_MAX_ROWS but to the download budget (``sql_export``:
RESULT_DOWNLOAD_MAX_ROWS, RESULT_DOWNLOAD_MAX_BYTES, RESULT_DOWNLOAD_TIMEOUT_SECONDS). A domain query's
download runs a request's SQL as ``POST /api/v1/domains/<domain>/sql`` does, over the domain as it is now,
within the same budget; its ``limit``, when given, asks for the first rows only.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from common import errors, scratch
from common.analysis.export_formats import FORMATS
from common.analysis.sql_engine import SqlLimits
from common.analysis.sql_export import DownloadBudget, ExportedResult, export_sql
from common.auth import Tenant
from common.names import Domain
from common.ports import DataPorts
from common.services import answer_tables, domain_sql, query_jobs
from common.services.domain_sql import DomainTable


@dataclasses.dataclass(frozen=True)
class ResultDownload:
    exported: ExportedResult
    title: str  # what the file is named after: the question, or the domain


def question_result(deps: DataPorts, tenant: Tenant, query_id: str, fmt: str) -> ResultDownload:
    """Write the whole result of a question's answer as ``fmt``, over the dataset versions it read."""
    from common.analysis.sql_policy import check_sql

    job = query_jobs.get_job(deps.metadata, tenant, query_id)  # another tenant's question is not found
    sql = answer_tables.answer_sql(job)
    tables = answer_tables.tables_as_read(deps, tenant, job)
    checked = check_sql(sql, {table.sql_name: [column["name"] for column in table.columns] for table in tables})
    try:
        exported = _export(deps, checked, tables, fmt)
    except errors.NotFound:
        # A version's file removed while it was read: replaced or deleted just now. Say which (409/410).
        answer_tables.tables_as_read(deps, tenant, job)
        raise errors.Gone("a table this answer read is no longer stored", code="DATASET_DELETED") from None
    return ResultDownload(exported, job.prompt)


def domain_query_result(deps: DataPorts, tenant: Tenant, domain: Domain, sql: Any, limit: Any, dialect: Any,
                        fmt: str) -> ResultDownload:
    """Write the result of a request's SQL over the domain's tables as ``fmt`` (its first ``limit`` rows when
    given, else all of it within the download budget)."""
    from common.analysis.sql_dialects import dialect_name, to_duckdb

    row_limit = download_limit(limit, deps.settings.result_download_max_rows)
    sql, _ = to_duckdb(domain_sql.sql_text(sql), dialect_name(dialect))
    exported, _ = domain_sql.run_on_tables_read(
        deps, tenant, domain, sql, lambda checked, needed: _export(deps, checked, needed, fmt, row_limit=row_limit))
    return ResultDownload(exported, f"{domain} result")


def download_limit(limit: Any, max_rows: int) -> int | None:
    """Check a download request's ``limit``: absent (the whole result) or an integer from 1 to ``max_rows``."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= max_rows:
        raise errors.BadRequest(f"'limit' must be an integer from 1 to {max_rows} for a download, got {limit!r}")
    return limit


def _export(deps: DataPorts, sql: str, tables: list[DomainTable], fmt: str, *,
            row_limit: int | None = None) -> ExportedResult:
    """Fetch the tables' Parquet copies and write the query's result into a file of the request's folder."""
    handle, out_path = scratch.mkstemp("result-", f".{FORMATS[fmt][1]}")
    os.close(handle)
    try:
        with domain_sql.local_copies(deps, tables) as paths:
            return export_sql(sql, paths, SqlLimits.from_settings(deps.settings),
                              DownloadBudget.from_settings(deps.settings), fmt, out_path, row_limit=row_limit)
    except BaseException:
        os.remove(out_path)  # on Cloud Run the disk is memory: a refused file goes at once, not with the request
        raise
