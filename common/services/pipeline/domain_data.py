"""What the agents are told about a domain: table profiles within the token budget, documents, history.

Everything here is a bounded description; no agent ever receives a table's rows (the manipulator's SQL
result is the only data that flows, and only in summary to the analyst and the visualizer).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from common import errors
from common.analysis.context import TableProfile, describe_tables
from common.auth import Tenant
from common.names import Domain
from common.ports import DataPorts
from common.services import dataset_reads, sessions
from common.services.domain_sql import DomainTable, domain_tables

EXCERPT_CHARS = 600
DOCUMENTS_TOTAL_CHARS = 12_000
TURN_CHARS = 400


@dataclasses.dataclass(frozen=True)
class DomainData:
    tables: list[DomainTable]
    profiles: list[TableProfile]
    documents: list[tuple[str, str]]  # (name, extracted text)
    versions: dict[str, str]  # dataset name -> version used


def check_domain(deps: DataPorts, tenant: Tenant, domain: Domain, wanted: tuple[str, ...], *,
                 has_pg: bool = False) -> None:
    """Refuse a question the domain cannot answer: nothing uploaded (409) or an unknown dataset (404)."""
    records = dataset_reads.list_records(deps, tenant, domain)
    if not records and not has_pg:
        raise errors.Conflict(f"domain {domain!r} has no datasets yet: upload a file first", code="NEED_UPLOAD")
    missing = sorted(set(wanted) - {record.data["name"] for record in records})
    if missing:
        raise errors.NotFound(f"dataset(s) not found in domain {domain!r}: {', '.join(missing)}",
                              code="DATASET_NOT_FOUND")


def load_domain(deps: DataPorts, tenant: Tenant, domain: Domain, wanted: tuple[str, ...],
                pg_tables: tuple[DomainTable, ...] = ()) -> DomainData:
    """Read the domain's tables (only ``wanted`` datasets when given, plus ``pg_tables``), profiles, documents."""
    records = [record for record in dataset_reads.list_records(deps, tenant, domain)
               if not wanted or record.data["name"] in wanted]
    if pg_tables and not wanted:
        records = []  # the question names only Postgres tables: the domain's files are not part of it
    documents = [(record.data["name"], dataset_reads.attachment_text(deps, tenant, domain,
                                                                     record.data["name"]))
                 for record in records if record.data["kind"] == "attachment"]
    tables: list[DomainTable] = []
    if any(record.data["kind"] == "table" for record in records):
        tables = [table for table in domain_tables(deps, tenant, domain)
                  if not wanted or table.dataset in wanted]
    tables += pg_tables
    profiles = [_profile(deps, table) for table in tables]
    versions = {record.data["name"]: record.data["version"] for record in records}
    versions.update({table.dataset: table.version for table in pg_tables})  # "live": Postgres as it is now
    return DomainData(tables=tables, profiles=profiles, documents=documents, versions=versions)


def _profile(deps: DataPorts, table: DomainTable) -> TableProfile:
    try:
        profile = json.loads(deps.blobs.get(table.profile_key))
        columns = profile["columns"]
    except (errors.NotFound, ValueError, KeyError):
        columns = table.columns  # names and types are enough to write SQL
    # A sheet is named with its workbook ("book.xlsx#Q1"); any other table by its dataset ("pg:warehouse:orders").
    source = table.table if table.sheet is not None else table.dataset
    return TableProfile(sql_name=table.sql_name, dataset=source, rows=table.rows, columns=columns)


def tables_text(data: DomainData, budget: int) -> str:
    """Describe the tables for a prompt, within ``budget`` tokens."""
    return describe_tables(data.profiles, token_budget=budget) if data.profiles else "(none)"


def attachments_text(data: DomainData) -> str:
    """Name each document with a short excerpt, marked as untrusted data."""
    if not data.documents:
        return "(none)"
    return "\n".join(f"- {json.dumps(name)}: {json.dumps(text[:EXCERPT_CHARS], ensure_ascii=False)}"
                     for name, text in data.documents)


def documents_text(data: DomainData) -> str:
    """The documents' text as ``=== name ===`` blocks, bounded in total."""
    return "\n\n".join(f"=== {name} ===\n{piece}" for name, piece in _document_pieces(data)) or "(none)"


def documents_read(data: DomainData) -> dict[str, str]:
    """The documents whose text ``documents_text`` gives the model, with their versions (the answer's provenance)."""
    return {name: data.versions[name] for name, _ in _document_pieces(data)}


def _document_pieces(data: DomainData) -> list[tuple[str, str]]:
    pieces, used = [], 0
    share = max(DOCUMENTS_TOTAL_CHARS // max(len(data.documents), 1), 1000)
    for name, text in data.documents:
        if used >= DOCUMENTS_TOTAL_CHARS:
            break
        piece = text[:min(share, DOCUMENTS_TOTAL_CHARS - used)]
        if piece:  # a document with no text (a scan) gives the model nothing, and takes no one's share
            pieces.append((name, piece))
            used += len(piece)
    return pieces


def recent_turns(deps: DataPorts, tenant: Tenant, session_id: str) -> tuple[str, dict[str, Any] | None]:
    """The last turns as short text, and the previous answer's result (sql, columns, rows) if any."""
    turns = sessions.history(deps.metadata, tenant, session_id, last=deps.settings.history_turns)
    if not turns:
        return "(none)", None
    lines = [f"{turn['role']}: {turn['content'][:TURN_CHARS]}" for turn in turns]
    previous = next((turn["answer"] for turn in reversed(turns) if turn["role"] == "assistant"
                     and (turn.get("answer") or {}).get("sql")), None)
    return "\n".join(lines), previous


def previous_result_text(previous: dict[str, Any] | None) -> str:
    """The previous answer's SQL and result columns, for follow-ups ("now by month")."""
    if not previous:
        return "(none)"
    table = previous.get("table") or {}
    columns = ", ".join(f"{c['name']} ({c['dtype']})" for c in table.get("columns", []))
    return f"SQL: {previous['sql']}\nColumns: {columns}\nRows: {table.get('row_count', '?')}"
