"""The tables a stored answer's SQL read, found again exactly as they were read, or a clear refusal.

An answer records what its SQL read (``provenance.tables``: each table's SQL name, dataset, table and
version). A dataset's version is never written twice and its blobs are removed when it is replaced, so the
same data is there to read again exactly when the dataset still holds that version: then its table is given
under the SQL name the answer used (so a table added to the domain since, which could rename others, changes
nothing). A dataset deleted since is 410 ``DATASET_DELETED``; one replaced since is 409 ``DATASET_REPLACED``
(asking again answers on the new data). A Postgres table loaded for the question (version ``live``) was kept
beside it as read, and is read from there. A question whose SQL ran on Postgres itself (pushed down) has no
such copy: its download is refused (409 ``LIVE_POSTGRES_RESULT``), saying to run the SQL on the connection.
"""

from __future__ import annotations

from typing import Any

from common import errors
from common.auth import Tenant
from common.names import Domain
from common.ports import DataPorts
from common.services import dataset_reads
from common.services.domain_sql import DomainTable
from common.services.pipeline import pg_tables
from common.services.pipeline.job import QueryJob
from common.services.pipeline.pg_tables import LIVE


def answer_sql(job: QueryJob) -> str:
    """The SQL behind the job's answer, or why there is none to run (409 while it runs, 404 without SQL)."""
    if not job.ended:
        raise errors.Conflict(f"query {job.query_id!r} is still {job.status}: its result can be downloaded once "
                              "it has succeeded", code="QUERY_NOT_FINISHED", details={"status": job.status})
    if job.status != "succeeded":
        raise errors.Conflict(f"query {job.query_id!r} {job.status}: it has no result to download",
                              code="QUERY_NOT_SUCCEEDED", details={"status": job.status})
    if job.answer is None or not job.answer.sql:
        raise errors.NotFound(f"the answer to query {job.query_id!r} has no result table (it was answered "
                              "without SQL: small talk, out of scope, or from documents)", code="NO_RESULT")
    if job.result is not None and job.result.engine == "postgres":
        sources = list(job.result.tables.values())  # each "pg:<connection>:<table>"
        connection = sources[0].split(":", 2)[1] if sources else "?"
        raise errors.Conflict(
            f"query {job.query_id!r} was answered on Postgres connection {connection!r} itself, whose data has no "
            "versions to read again; the download covers answers over datasets (and Postgres tables loaded into "
            f"the question). Run its SQL on the connection: POST /api/v1/postgres/{connection}/query",
            code="LIVE_POSTGRES_RESULT", details={"connection": connection, "sql": job.answer.sql})
    return job.answer.sql


def tables_as_read(deps: DataPorts, tenant: Tenant, job: QueryJob) -> list[DomainTable]:
    """The tables the job's answer read, each as the version it read (409/410 when that is gone)."""
    reads = _reads(job)
    kept = {table.sql_name: table for table in pg_tables.restored(job)}
    records = {record.data["name"]: record for record in dataset_reads.list_records(deps, tenant, Domain(job.domain))}
    return [_as_read(job, read, kept, records) for read in reads]


def _reads(job: QueryJob) -> list[dict[str, Any]]:
    """What the answer says it read: each {table_name, dataset, table, version}."""
    result, provenance = job.result, job.answer.provenance
    if result is not None and result.read is not None:
        return result.read  # a reused result carries the reads of the answer it came from
    if "tables" in provenance:
        return provenance["tables"]  # an answer from the answer cache
    if result is not None and result.tables and not result.reused:
        return _older_reads(job)
    raise errors.Conflict(f"the answer to query {job.query_id!r} was stored before answers recorded which tables "
                          "they read, so its data cannot be found again: ask the question again",
                          code="READS_NOT_RECORDED")


def _older_reads(job: QueryJob) -> list[dict[str, Any]]:
    """The reads of a job stored before answers listed them: its result's tables, versions from its provenance."""
    versions = job.answer.provenance.get("datasets") or {}
    kept = {table.sql_name: table for table in pg_tables.restored(job)}
    reads = []
    for sql_name, table in job.result.tables.items():
        if sql_name in kept:
            reads.append({"table_name": sql_name, "dataset": kept[sql_name].dataset, "table": table,
                          "version": LIVE})
            continue
        # A sheet's table is named after its workbook (book.xlsx#Q1): the longest dataset name it starts with.
        holders = [name for name in versions if table == name or table.startswith(name + "#")]
        dataset = max(holders, key=len) if holders else None
        reads.append({"table_name": sql_name, "dataset": dataset, "table": table,
                      "version": versions.get(dataset)})
    return reads


def _as_read(job: QueryJob, read: dict[str, Any], kept: dict[str, DomainTable],
             records: dict[str, Any]) -> DomainTable:
    sql_name, dataset, version = read["table_name"], read.get("dataset"), read.get("version")
    if version == LIVE:
        table = kept.get(sql_name)
        if table is None or table.dataset != dataset:  # read by the earlier answer this one reused
            raise errors.Conflict(f"table {sql_name!r} was read live from Postgres ({dataset}) by an earlier "
                                  "question and not kept with this one: ask the question again",
                                  code="LIVE_POSTGRES_RESULT", details={"table": sql_name})
        return table
    if not dataset or not version:
        raise errors.Conflict(f"the answer to query {job.query_id!r} does not record which version of table "
                              f"{sql_name!r} it read: ask the question again", code="READS_NOT_RECORDED",
                              details={"table": sql_name})
    record = records.get(dataset)
    if record is None:
        raise errors.Gone(f"dataset {dataset!r}, which this answer read, has been deleted since",
                          code="DATASET_DELETED", details={"dataset": dataset, "version": version})
    if record.data["version"] != version:
        raise errors.Conflict(f"dataset {dataset!r} has been replaced since this answer read it (version {version}, "
                              f"now {record.data['version']}); ask the question again to download the new data",
                              code="DATASET_REPLACED", details={"dataset": dataset, "version_read": version,
                                                                "current_version": record.data["version"]})
    table = next((table for table in record.data.get("tables", []) if table["name"] == read["table"]), None)
    if table is None:  # cannot happen while the version is the same; said plainly if it ever does
        raise errors.Gone(f"table {read['table']!r} is no longer in dataset {dataset!r}", code="DATASET_DELETED",
                          details={"dataset": dataset, "table": read["table"]})
    return DomainTable(sql_name=sql_name, dataset=dataset, table=table["name"], sheet=table.get("sheet"),
                       rows=table["rows"], columns=table["columns"], parquet_key=table["parquet_key"],
                       profile_key=table["profile_key"], version=version)
