"""What an answer rests on: the tables its SQL read, each with its dataset and version (or, for a documents-only
answer, the documents the model was given), for the stored answer and the analyst's prompt.

A read is what the SQL that ran reads (``sql_policy.tables_read``: a CTE is not a table), never every dataset of
the domain. Each is described from the domain's tables as listed right after the run (and the question's
Postgres tables, version ``live``), so it names the version the run read unless a re-upload landed in between.
"""

from __future__ import annotations

import json
from typing import Any

from common import errors
from common.auth import Tenant
from common.names import Domain
from common.ports import QuestionPorts
from common.services import domain_sql
from common.services.domain_sql import DomainTable
from common.services.pipeline import pg_tables
from common.services.pipeline.job import QueryJob, Result


def describe_reads(deps: QuestionPorts, tenant: Tenant, job: QueryJob, read: dict[str, str]) -> list[dict[str, Any]]:
    """Describe each table the SQL read ({SQL name: table}, as the run reports it) by its dataset and version."""
    if not read:
        return []
    postgres = {table.sql_name: table for table in pg_tables.restored(job)}
    listed = {} if set(read) <= set(postgres) else \
        {table.sql_name: table for table in _domain_tables(deps, tenant, job)}
    listed.update(postgres)  # as in the run: a Postgres table's name wins (it was chosen to avoid the domain's)
    described = []
    for sql_name, table_read in sorted(read.items()):
        table = listed.get(sql_name)
        if table is None or table_read not in (table.table, table.dataset):  # renamed by an upload meanwhile
            described.append({"table_name": sql_name, "dataset": None, "table": table_read, "sheet": None,
                              "version": None})
            continue
        described.append({"table_name": sql_name, "dataset": table.dataset, "table": table.table,
                          "sheet": table.sheet, "version": table.version})
    return described


def _domain_tables(deps: QuestionPorts, tenant: Tenant, job: QueryJob) -> list[DomainTable]:
    try:
        return domain_sql.domain_tables(deps, tenant, Domain(job.domain))
    except errors.NotFound:  # deleted since the run: what was read can no longer be described
        return []


def answer_provenance(job: QueryJob) -> dict[str, Any]:
    """The answer's provenance: the datasets read (name -> version), the tables read, and the model."""
    if job.plan is not None and job.plan.mode == "documents":
        return {"datasets": dict(job.context.versions), "tables": [], "model": job.request.model_id}
    read = (job.result.read if job.result else None) or []
    return {"datasets": {entry["dataset"]: entry["version"] for entry in read if entry["dataset"]},
            "tables": read, "model": job.request.model_id}


def reads_text(result: Result) -> str:
    """The tables the result was read from, for the analyst: ``sales (from "sales.csv")``."""
    if result.read:
        return "; ".join(f"{entry['table_name']} (from {json.dumps(_source(entry), ensure_ascii=False)})"
                         for entry in result.read)
    return ", ".join(sorted(result.tables)) or "(none)"  # a job stored before reads were described


def _source(entry: dict[str, Any]) -> str:
    # A sheet is named with its workbook ("book.xlsx#Q1"); any other table by its dataset.
    return entry["table"] if entry["sheet"] is not None or not entry["dataset"] else entry["dataset"]
