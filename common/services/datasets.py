"""Datasets: upload, commit, list and delete a tenant's files, domain by domain.

A dataset is one uploaded file, named exactly as uploaded, in a domain. Its blobs live under a version
prefix that is never written twice (``tenants/<ns>/datasets/<domain>/<name>/<version>/...``); the metadata
record names the current version. An upload writes every blob of a new version first and then moves the
record to it with compare-and-set, so a reader follows the record to a complete version, old or new, never
a mix. Whatever fails before the record moves removes its own blobs; the replaced version's blobs are
removed after it. Reads live in ``dataset_reads``.
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import tempfile
from typing import Any

from common import errors, names, scratch
from common.auth import Tenant
from common.clock import Clock
from common.metadata import Record
from common.names import Domain
from common.ports import DataPorts
from common.storage import keys
from common.uploads import ReceivedFile

log = logging.getLogger("convoinsight.datasets")

COLLECTION = "datasets"
MAX_FILES_PER_UPLOAD = 20
_COMMIT_ATTEMPTS = 8


def dataset_record(deps: DataPorts, tenant: Tenant, domain: Domain, name: str) -> Record:
    """Return the dataset's metadata record, or raise a 404 that names it."""
    try:
        return deps.metadata.get(COLLECTION, tenant.user_id, record_key(domain, name))
    except errors.NotFound:
        raise errors.NotFound(f"dataset {name!r} not found in domain {domain!r}",
                              code="DATASET_NOT_FOUND") from None


def new_version(clock: Clock) -> str:
    """A version id: time first, so versions sort by age; random after, so two uploads never share one."""
    millis = int(clock.now().timestamp() * 1000)
    return f"{millis:013d}-{secrets.token_hex(4)}"


def record_key(domain: Domain, name: str) -> str:
    return f"{domain}/{name}"


def upload(deps: DataPorts, tenant: Tenant, domain: Domain, files: list[ReceivedFile]) -> list[Record]:
    """Validate every file first, then commit each as a new dataset version; return their records."""
    if not files:
        raise errors.BadRequest("no file was uploaded: send one or more 'file' parts", code="NO_FILE")
    if len(files) > MAX_FILES_PER_UPLOAD:
        raise errors.BadRequest(f"at most {MAX_FILES_PER_UPLOAD} files per upload")
    seen: set[str] = set()
    for received in files:
        name = names.dataset_name(received.filename)
        if name in seen:
            raise errors.BadRequest(f"the file {name!r} appears twice in this upload")
        seen.add(name)
    workdir = scratch.mkdtemp("ingest-")
    try:
        # Parse and validate everything before anything is stored: one bad file changes nothing.
        parsed = [(received, _ingest(deps, received, workdir)) for received in files]
        return [_commit_new_version(deps, tenant, domain, received, result) for received, result in parsed]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _ingest(deps: DataPorts, received: ReceivedFile, workdir: str) -> Any:
    from common.analysis.ingest import IngestLimits, ingest

    if received.size == 0:
        raise errors.BadRequest(f"the file {received.filename!r} is empty", code="EMPTY_FILE")
    limits = IngestLimits.from_settings(deps.settings)
    file_workdir = tempfile.mkdtemp(dir=workdir)
    name = received.filename
    try:
        return ingest(received.path, name, limits, file_workdir)
    except errors.AppError as exc:
        if exc.status < 500 and name not in exc.message:
            raise exc.with_message(f"{name}: {exc.message}") from exc
        raise


def _commit_new_version(deps: DataPorts, tenant: Tenant, domain: str, received: ReceivedFile,
                        result: Any) -> Any:
    name = received.filename
    version = new_version(deps.clock)
    prefix = keys.version_prefix(tenant, domain, name, version)
    try:
        data = _write_version_blobs(deps, prefix, received, result)
        data.update(domain=domain, name=name, version=version, uploaded_by=tenant.user_id)
        record, replaced = _move_record(deps, tenant, domain, name, data)
    except BaseException:
        # A write that reached the store but reported a failure may still have committed: keep its blobs then.
        if not _is_current(deps, tenant, domain, name, version):
            _remove_quietly(deps, prefix + "/")
        raise
    if replaced and replaced != version:
        _remove_quietly(deps, keys.version_prefix(tenant, domain, name, replaced) + "/")
    return record


def _write_version_blobs(deps: DataPorts, prefix: str, received: ReceivedFile, result: Any) -> dict:
    blobs = deps.blobs
    blobs.put_file(f"{prefix}/original", received.path, content_type=result.content_type)
    tables = []
    for index, table in enumerate(result.tables):
        table_prefix = f"{prefix}/table-{index}"
        blobs.put_file(f"{table_prefix}.parquet", table.parquet_path, content_type="application/vnd.apache.parquet")
        blobs.put_file(f"{table_prefix}.preview.parquet", table.preview_path,
                       content_type="application/vnd.apache.parquet")
        blobs.put(f"{table_prefix}.profile.json", json.dumps(table.profile, ensure_ascii=False).encode("utf-8"),
                  content_type="application/json")
        tables.append({"name": table.name, "sheet": table.sheet, "rows": table.rows, "columns": table.columns,
                       "parquet_key": f"{table_prefix}.parquet", "preview_key": f"{table_prefix}.preview.parquet",
                       "profile_key": f"{table_prefix}.profile.json"})
    data: dict[str, Any] = {"kind": result.kind, "format": result.format, "content_type": result.content_type,
                            "size_bytes": received.size, "original_key": f"{prefix}/original",
                            "tables": tables, "warnings": list(result.warnings)}
    if result.text is not None:
        blobs.put(f"{prefix}/text.txt", result.text.encode("utf-8"), content_type="text/plain; charset=utf-8")
        data.update(text_key=f"{prefix}/text.txt", text_chars=len(result.text))
    return data


def _move_record(deps: DataPorts, tenant: Tenant, domain: str, name: str, data: dict) -> tuple[Any, str | None]:
    """Point the record at the new version (compare-and-set); return it and the version it replaced."""
    key = record_key(domain, name)
    for _ in range(_COMMIT_ATTEMPTS):
        try:
            current = deps.metadata.get(COLLECTION, tenant.user_id, key)
            expected, replaced = current.revision, current.data.get("version")
            # Notes the user wrote about the dataset survive a re-upload of the same file.
            for kept in ("description", "column_notes"):
                if kept in current.data:
                    data.setdefault(kept, current.data[kept])
        except errors.NotFound:
            expected, replaced = None, None
        try:
            record = deps.metadata.put(COLLECTION, tenant.user_id, key, data, parent=domain,
                                        expected_revision=expected)
            return record, replaced
        except errors.Conflict:
            continue  # another upload of the same name committed first; ours replaces it
    raise errors.Conflict(f"{name!r} is being uploaded concurrently; try again")


def _is_current(deps: DataPorts, tenant: Tenant, domain: str, name: str, version: str) -> bool:
    try:
        return deps.metadata.get(COLLECTION, tenant.user_id, record_key(domain, name)).data["version"] == version
    except Exception:  # noqa: BLE001 - unknown means "not ours"; cleanup sweeps what is unreferenced
        return False


def _remove_quietly(deps: DataPorts, prefix: str) -> None:
    try:
        deps.blobs.delete_prefix(prefix)
    except Exception:  # noqa: BLE001 - the cleanup job removes what this leaves behind
        log.warning("could not remove blobs under %s; cleanup will", prefix, exc_info=True)


def delete(deps: DataPorts, tenant: Tenant, domain: Domain, name: str) -> dict:
    """Remove one dataset: first its record (readers stop finding it), then the blobs of the version it named."""
    record = _delete_record(deps, tenant, dataset_record(deps, tenant, domain, names.dataset_name(name)))
    if record is None:
        raise errors.NotFound(f"dataset {name!r} not found in domain {domain!r}", code="DATASET_NOT_FOUND")
    return dataset_view(record)


def delete_domain(deps: DataPorts, tenant: Tenant, domain: Domain, *, missing_ok: bool) -> list[str]:
    """Remove every dataset of a domain; return the names removed.

    A domain exists only while it holds datasets, so one with none is a 404 unless ``missing_ok`` (the
    original API's frontend deletes domains it keeps itself and needs a 2xx for one the backend never saw).
    """
    records = deps.metadata.list(COLLECTION, tenant.user_id, parent=domain)
    if not records and not missing_ok:
        raise errors.NotFound(f"domain {domain!r} not found", code="DOMAIN_NOT_FOUND")
    deleted = [_delete_record(deps, tenant, record) for record in records]
    return [record.data["name"] for record in deleted if record is not None]


def _delete_record(deps: DataPorts, tenant: Tenant, record: Record) -> Record | None:
    """Delete the dataset's record as it is now, then only the blobs of the version it named; return it (None
    when it was gone already).

    Only that version goes, never the dataset's or the domain's whole prefix: an upload committing meanwhile
    has written its own version's blobs first, so it ends whole (listed and readable) or not at all, never
    listed with its files gone. Versions no record names are swept by the cleanup job.
    """
    for _ in range(_COMMIT_ATTEMPTS):
        try:
            deps.metadata.delete(COLLECTION, tenant.user_id, record.key, expected_revision=record.revision)
        except errors.NotFound:
            return None  # a concurrent delete won; the outcome is the same
        except errors.Conflict:  # re-uploaded meanwhile: delete what it is now
            try:
                record = deps.metadata.get(COLLECTION, tenant.user_id, record.key)
            except errors.NotFound:
                return None
            continue
        data = record.data
        _remove_quietly(deps, keys.version_prefix(tenant, Domain(data["domain"]), data["name"], data["version"]) + "/")
        return record
    raise errors.Conflict(f"{record.data['name']!r} kept changing while it was deleted; try again")


def update_notes(deps: DataPorts, tenant: Tenant, domain: Domain, name: str, description: Any,
                 columns: Any) -> dict:
    """Save the user's description and column notes on a dataset (kept across re-uploads)."""
    if not isinstance(description, str) or len(description) > 10_000:
        raise errors.BadRequest("'description' must be a string of at most 10000 characters")
    if not isinstance(columns, list) or not all(isinstance(c, dict) and isinstance(c.get("name"), str)
                                                for c in columns):
        raise errors.BadRequest("'columns' must be a list of objects with a 'name'")
    notes = [{"name": c["name"][:256], "type": str(c.get("type", ""))[:32],
              "description": str(c.get("description", ""))[:2000]} for c in columns[:5000]]
    name = names.dataset_name(name)
    for _ in range(_COMMIT_ATTEMPTS):
        record = dataset_record(deps, tenant, domain, name)
        try:
            updated = deps.metadata.put(COLLECTION, tenant.user_id, record.key,
                                         {**record.data, "description": description, "column_notes": notes},
                                         parent=domain, expected_revision=record.revision)
            return dataset_view(updated)
        except errors.Conflict:
            continue
    raise errors.Conflict("the dataset changed while saving; try again")


def dataset_view(record: Any, sql_names: dict[str, str] | None = None) -> dict:
    """The public description of a dataset (no storage keys); given its domain's ``sql_table_names``, each
    table also says the name SQL reads it by (``table_name``), and the dataset lists them (``table_names``)."""
    data = record.data
    tables = [{"name": t["name"], "sheet": t["sheet"], "rows": t["rows"], "columns": t["columns"]}
              for t in data.get("tables", [])]
    if sql_names is not None:
        for table in tables:
            table["table_name"] = sql_names.get(table["name"])
    view = {
        "domain": data["domain"], "name": data["name"], "kind": data["kind"], "format": data["format"],
        "version": data["version"], "size_bytes": data["size_bytes"], "content_type": data["content_type"],
        "created_at": record.created_at.isoformat(), "updated_at": record.updated_at.isoformat(),
        "tables": tables,
        "warnings": data.get("warnings", []),
        "description": data.get("description", ""),
    }
    if sql_names is not None:
        view["table_names"] = [table["table_name"] for table in tables]
    if "text_chars" in data:
        view["text_chars"] = data["text_chars"]
    if data.get("column_notes"):
        view["column_notes"] = data["column_notes"]
    return view


def sql_table_names(records: list[Record]) -> dict[str, dict[str, str]]:
    """The name SQL reads each table by, per domain then table name (``book.xlsx#Q1`` -> ``book_q1``).

    Names are domain-wide (a collision gets a suffix, in sorted order), so ``records`` must hold every dataset
    of each domain named: a listing computes them once from the records it read, with no further read.
    """
    from common.analysis.table_names import table_names

    found: dict[str, list[tuple[str, str | None]]] = {}
    for record in records:
        if record.data.get("kind") == "table":
            found.setdefault(record.data["domain"], []).extend(
                (table["name"], table.get("sheet")) for table in record.data.get("tables", []))
    return {domain: table_names(tables) for domain, tables in found.items()}
