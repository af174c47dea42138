"""Reading datasets: listings, domains, previews, downloads and attachment text.

Previews and downloads read the normalised Parquet copies written at upload, never the original file:
a preview of up to ``PREVIEW_ROWS`` rows reads the small preview copy. A reader that loses a race with a
re-upload (its version's blobs were just removed) follows the record once more to the new version.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

from common import errors, names, scratch
from common.auth import Tenant
from common.metadata import Record
from common.names import Domain
from common.ports import DataPorts
from common.services.datasets import COLLECTION, dataset_record, dataset_view, sql_table_names

_READ_ATTEMPTS = 5
EXPORT_FORMATS = {"csv": "text/csv; charset=utf-8", "json": "application/json",
                  "parquet": "application/vnd.apache.parquet"}
DOWNLOAD_FORMATS = ("original", *EXPORT_FORMATS)  # original: the bytes as uploaded, with their own content type


@dataclasses.dataclass(frozen=True)
class ExportedFile:
    path: str
    content_type: str
    download_name: str

    def remove(self) -> None:
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass


def list_records(deps: DataPorts, tenant: Tenant, domain: Domain | None = None) -> list[Record]:
    """Return the tenant's dataset records (of one domain when given), ordered by domain then name."""
    return deps.metadata.list(COLLECTION, tenant.user_id, parent=domain, order_by="key")


def list_datasets(deps: DataPorts, tenant: Tenant, domain: Domain | None = None) -> list[dict]:
    """Return the tenant's datasets (of one domain when given), ordered by domain then name, each table with
    the name SQL reads it by (one listing read: the names come from the records listed)."""
    records = list_records(deps, tenant, domain)
    sql_names = sql_table_names(records)
    return [dataset_view(record, sql_names.get(record.data["domain"], {})) for record in records]


def list_domains(deps: DataPorts, tenant: Tenant) -> list[dict]:
    """Return each domain holding datasets, with its dataset names, its tables' SQL names and last update."""
    domains: dict[str, dict] = {}
    for view in list_datasets(deps, tenant):
        entry = domains.setdefault(view["domain"], {"domain": view["domain"], "datasets": [], "table_names": [],
                                                    "updated_at": ""})
        entry["datasets"].append(view["name"])
        entry["table_names"] += view["table_names"]
        entry["updated_at"] = max(entry["updated_at"], view["updated_at"])
    for entry in domains.values():
        entry["table_names"].sort()
    return list(domains.values())


def domain_sql_names(deps: DataPorts, tenant: Tenant, domain: Domain) -> dict[str, str]:
    """The name SQL reads each of the domain's tables by, keyed by table name (one listing read)."""
    return sql_table_names(list_records(deps, tenant, domain)).get(domain, {})


def views_with_names(deps: DataPorts, tenant: Tenant, domain: Domain, records: list[Any]) -> list[dict]:
    """Describe ``records`` of ``domain`` (just uploaded) with the names SQL now reads their tables by."""
    sql_names = domain_sql_names(deps, tenant, domain)
    return [dataset_view(record, sql_names) for record in records]


def get_dataset(deps: DataPorts, tenant: Tenant, domain: Domain, name: str) -> dict:
    """Return one dataset's description."""
    record = dataset_record(deps, tenant, domain, names.dataset_name(name))
    return dataset_view(record, domain_sql_names(deps, tenant, domain))


def resolve(deps: DataPorts, tenant: Tenant, domain: Domain, name: str) -> tuple[Any, dict | None]:
    """Find the record and table for ``name``, which may be ``file.xlsx#Sheet`` for one sheet."""
    try:
        record = dataset_record(deps, tenant, domain, names.dataset_name(name))
        tables = record.data.get("tables", [])
        return record, tables[0] if tables else None
    except errors.NotFound:
        base, hash_sign, sheet = name.rpartition("#")
        if not hash_sign:
            raise
        record = dataset_record(deps, tenant, domain, names.dataset_name(base))
        for table in record.data.get("tables", []):
            if table.get("sheet") == sheet:
                return record, table
        raise errors.NotFound(f"sheet {sheet!r} not found in {base!r}", code="DATASET_NOT_FOUND") from None


def _with_current_version(deps: DataPorts, tenant: Tenant, domain: Domain, name: str,
                          read: Callable[[Any, dict | None], Any]) -> Any:
    for attempt in range(_READ_ATTEMPTS):
        record, table = resolve(deps, tenant, domain, name)
        try:
            return read(record, table)
        except (errors.NotFound, FileNotFoundError):
            # A re-upload replaced this version between our reads (a local file can vanish even after its
            # path was handed out): follow the record again.
            if attempt == _READ_ATTEMPTS - 1:
                raise errors.NotFound(f"{name!r} kept changing while it was read; try again") from None
            continue
    raise AssertionError("unreachable")


def _require_table(record: Record, table: dict | None) -> dict:
    if table is None:
        raise errors.BadRequest(f"{record.data['name']!r} is an attachment, not a table", code="NOT_A_TABLE")
    return table


def local_copy(deps: DataPorts, key: str, workdir: str) -> str:
    """Return a local path of the blob: the store's own file, or a download into ``workdir``."""
    path = deps.blobs.local_path(key)
    if path:
        if not os.path.exists(path):
            raise errors.NotFound(f"blob {key} is gone")
        return path
    target = os.path.join(workdir, os.path.basename(key))
    deps.blobs.download(key, target)
    return target


def preview(deps: DataPorts, tenant: Tenant, domain: Domain, name: str, rows: int) -> dict:
    """Return the dataset's description with its first ``rows`` rows (``rows <= 0``: all rows)."""
    from common.analysis.tables import read_preview

    sql_names = domain_sql_names(deps, tenant, domain)

    def read(record: Record, table: dict | None) -> dict:
        view = dataset_view(record, sql_names)
        if table is None:
            return {**view, "columns": [], "rows": []}
        fits_preview = 0 < rows <= deps.settings.preview_rows
        key = table["preview_key"] if fits_preview else table["parquet_key"]
        with scratch.directory("preview-") as workdir:
            data = read_preview(local_copy(deps, key, workdir), rows if rows > 0 else None)
        return {**view, "table": table["name"], "table_name": sql_names.get(table["name"]),
                "columns": data["columns"], "rows": data["rows"], "row_count": table["rows"]}

    return _with_current_version(deps, tenant, domain, name, read)


def export(deps: DataPorts, tenant: Tenant, domain: Domain, name: str, fmt: str,
           limit: int | None = None) -> ExportedFile:
    """Write the dataset (or its first ``limit`` rows) as csv, json or parquet to a temporary file."""
    from common.analysis.tables import export as export_table

    if fmt not in EXPORT_FORMATS:
        raise errors.BadRequest(f"format must be one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}")

    def read(record: Record, table: dict | None) -> ExportedFile:
        table = _require_table(record, table)
        handle, out_path = scratch.mkstemp("export-", f".{fmt}")
        os.close(handle)
        try:
            with scratch.directory("export-src-") as workdir:
                export_table(local_copy(deps, table["parquet_key"], workdir), fmt, out_path, limit=limit)
        except BaseException:
            os.remove(out_path)
            raise
        stem = table["name"].replace("#", "_")
        return ExportedFile(out_path, EXPORT_FORMATS[fmt], f"{os.path.splitext(stem)[0]}.{fmt}")

    return _with_current_version(deps, tenant, domain, name, read)


def check_download_format(fmt: str) -> None:
    """Refuse a download format that is not served, naming the ones that are."""
    if fmt not in DOWNLOAD_FORMATS:
        raise errors.BadRequest(f"format must be one of {', '.join(DOWNLOAD_FORMATS)}, got {fmt!r}",
                                details={"accepted": list(DOWNLOAD_FORMATS)})


def original(deps: DataPorts, tenant: Tenant, domain: Domain, name: str) -> tuple[Any, str, str]:
    """Open the file as uploaded; return (stream, content type, file name). The caller closes the stream.

    The content type is the one recorded at upload; for delimited text it names the charset detected then
    (files uploaded before that was recorded say none, rather than a guess).
    """

    def read(record: Record, table: dict | None) -> tuple[Any, str, str]:
        return deps.blobs.open(record.data["original_key"]), record.data["content_type"], record.data["name"]

    return _with_current_version(deps, tenant, domain, name, read)


def attachment_text(deps: DataPorts, tenant: Tenant, domain: Domain, name: str) -> str:
    """Return the text extracted from an attachment at upload ("" for a table)."""

    def read(record: Record, table: dict | None) -> str:
        key = record.data.get("text_key")
        return deps.blobs.get(key).decode("utf-8") if key else ""

    return _with_current_version(deps, tenant, domain, name, read)
