"""Postgres tables named by a question (``pg:<connection>:<table>`` and the original's ``pg:`` forms):
read once at plan time, each capped at PG_MAX_ROWS, kept beside the question as Parquet with a profile,
and from then on queried by the same engine, under the same policy, as the domain's own tables.

Each is a ``DomainTable`` whose dataset is the token's source (``pg:warehouse:orders``), whose table is the
name Postgres knows it by, schema included (``sales.orders``; ``query:<alias>`` for a query), and whose
version is ``live``: it was read as it was then, and a re-read may differ."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from common import scratch
from common.auth import Tenant
from common.ports import QuestionPorts
from common.services.domain_sql import DomainTable
from common.services.pipeline.job import QueryJob
from common.storage import keys

LIVE = "live"


def load_pg_tables(deps: QuestionPorts, tenant: Tenant, query_id: str, tokens: list[str],
                   taken: set[str]) -> list[DomainTable]:
    """Read the tables ``tokens`` name and store them for this question; their SQL names avoid ``taken``."""
    from common.analysis.profile import profile_table
    from common.services.postgres.questions import load_for_question

    tables = []
    with scratch.directory("pg-") as workdir:
        loaded_tables = load_for_question(deps, tenant, tokens, workdir)
        schemas = _schemas(deps, tenant, {loaded.connection for loaded in loaded_tables if loaded.table is not None})
        for loaded in loaded_tables:
            sql_name = _unique(loaded.sql_name, taken)
            taken.add(sql_name)
            parquet_key, profile_key = keys.question_table_keys(tenant, query_id, sql_name)
            deps.blobs.put_file(parquet_key, loaded.path, content_type="application/vnd.apache.parquet")
            profile = profile_table(loaded.path, loaded.path)
            deps.blobs.put(profile_key, json.dumps(profile, default=str).encode(), content_type="application/json")
            table = f"{schemas[loaded.connection]}.{loaded.table}" if loaded.table is not None else \
                loaded.source.split(":", 2)[2]
            tables.append(DomainTable(sql_name=sql_name, dataset=loaded.source, table=table, sheet=None,
                                      rows=loaded.rows, columns=loaded.columns, parquet_key=parquet_key,
                                      profile_key=profile_key, version=LIVE))
    return tables


def _schemas(deps: QuestionPorts, tenant: Tenant, connections: set[str]) -> dict[str, str]:
    """The schema each connection reads tables from: one read per connection the question names."""
    from common.services.postgres.connections import get

    return {name: get(deps, tenant, name).data["schema"] for name in connections}


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 1
    while candidate in taken:  # a domain table of the same name keeps it; the Postgres one gets a prefix
        n += 1
        candidate = f"pg_{name}" if n == 2 else f"pg_{name}_{n}"
    return candidate


def stored(tables: list[DomainTable]) -> list[dict[str, Any]]:
    """The tables as the job keeps them."""
    return [dataclasses.asdict(table) for table in tables]


def restored(job: QueryJob) -> tuple[DomainTable, ...]:
    """The Postgres tables this job loaded at plan time."""
    return tuple(DomainTable(**table) for table in (job.context.pg_tables if job.context else []))
