"""Runs one query for a download: DuckDB streams its rows in Arrow batches into a file, in a capped process.

The query runs as ``sql_engine`` runs one, on the same sandboxed connection over the same lazy Parquet tables,
in a process of its own whose memory is capped at SQL_MEMORY_LIMIT_MB + 256 MB and which is killed at the
download's deadline (RESULT_DOWNLOAD_TIMEOUT_SECONDS: writing a large XLSX takes longer than a query). But the
rows are never gathered: DuckDB's Arrow reader hands over ``BATCH_ROWS`` rows at a time (it streams: 20
million rows read this way kept the process at 110 MB) and each batch goes to the file's writer at once, so
memory holds one batch whatever the size of the result. The rows are counted and the file measured after
every batch against the download's budget: more rows than ``max_rows`` or more bytes than ``max_bytes``
stops the query and refuses the download (413 RESULT_TOO_LARGE), unless the caller asked for the first
``row_limit`` rows, which are then written and the result marked ``truncated``.

The file is written in the caller's temporary folder, which outlives a killed process, and sent once it is
complete: every refusal is an error status before the first byte, never a file cut short without a word.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from common import errors, scratch
from common.analysis import sql_process
from common.analysis.sql_engine import (  # the engine's own steps: a download's query runs as an answer's did
    PROCESS_HEADROOM_MB,
    SqlLimits,
    instance_busy,
    query_connection,
    too_expensive,
    unique_names,
)
from common.analysis.sql_errors import SqlTimeout

if TYPE_CHECKING:
    from common.config import Settings

BATCH_ROWS = 2048  # DuckDB's vector size: a batch of long values stays small


@dataclasses.dataclass(frozen=True)
class DownloadBudget:
    max_rows: int
    max_bytes: int
    timeout_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> DownloadBudget:
        """Read the download budget from the instance's settings."""
        return cls(max_rows=settings.result_download_max_rows, max_bytes=settings.result_download_max_bytes,
                   timeout_seconds=settings.result_download_timeout_seconds)


@dataclasses.dataclass(frozen=True)
class ExportedResult:
    path: str
    fmt: str
    rows: int
    truncated: bool  # only when ``row_limit`` cut the result; over the budget is a refusal
    size: int
    columns: list[dict[str, str]]


def export_sql(sql: str, tables: dict[str, str], limits: SqlLimits, budget: DownloadBudget, fmt: str,
               out_path: str, *, row_limit: int | None = None) -> ExportedResult:
    """Run one checked SELECT over ``tables`` (SQL name -> local Parquet path) and write its rows to ``out_path``
    as ``fmt``, within the download budget (the first ``row_limit`` rows when given)."""
    cap = _RowCap(rows=min(row_limit or budget.max_rows, budget.max_rows), cut=row_limit is not None,
                  max_bytes=budget.max_bytes)
    with scratch.directory("sql-export-") as workdir:  # the caller's, so it is removed even if the process is killed
        try:
            outcome = sql_process.run_capped(
                _export, (sql, tables, limits, cap, fmt, out_path, workdir), timeout_seconds=budget.timeout_seconds,
                memory_bytes=(limits.memory_limit_mb + PROCESS_HEADROOM_MB) * 1024 * 1024, slots=limits.concurrency)
        except sql_process.NoSlot:
            raise instance_busy(limits) from None
        except sql_process.ProcessTimedOut:
            raise SqlTimeout(f"the download took longer than the {budget.timeout_seconds:g} s limit and was "
                             "stopped; filter or aggregate the result first",
                             details={"timeout_seconds": budget.timeout_seconds}) from None
        except sql_process.ProcessDied:
            raise too_expensive(limits) from None
    return ExportedResult(path=out_path, fmt=fmt, **outcome)


@dataclasses.dataclass(frozen=True)
class _RowCap:
    rows: int
    cut: bool  # write the first ``rows`` and say so, instead of refusing a larger result
    max_bytes: int


def _export(sql: str, tables: dict[str, str], limits: SqlLimits, cap: _RowCap, fmt: str, out_path: str,
            workdir: str) -> dict[str, Any]:
    """In the query's process: the connection and tables as ``sql_engine`` opens them, then the file."""
    with query_connection(sql, tables, limits, workdir) as connection:
        return _write(connection, sql, cap, fmt, out_path)


def _write(connection: Any, sql: str, cap: _RowCap, fmt: str, out_path: str) -> dict[str, Any]:
    """Stream at most ``cap.rows + 1`` rows into the file, batch by batch, within the budget."""
    import pyarrow as pa

    from common.analysis.export_formats import open_writer

    # One row more than the cap says whether there are more; LIMIT lets DuckDB stop early (a top-N, not a sort).
    relation = connection.sql(sql)
    reader = relation.limit(cap.rows + 1).to_arrow_reader(BATCH_ROWS)
    # The query's own names (the LIMIT's subquery renames a repeated one), made unique as an answer's table is.
    names = unique_names(relation.columns)
    schema = pa.schema([field.with_name(name) for field, name in zip(reader.schema, names, strict=True)])
    rows, truncated = 0, False
    with open(out_path, "wb") as out:
        writer = open_writer(fmt, out, schema)
        for batch in reader:
            if rows + batch.num_rows > cap.rows:
                batch, truncated = batch.slice(0, cap.rows - rows), True
                if not cap.cut:
                    raise _too_many_rows(cap, fmt)
            writer.write(pa.RecordBatch.from_arrays(batch.columns, schema=schema))
            rows += batch.num_rows
            _check_size(writer.size(), cap, fmt, rows)
            if truncated:
                break
        writer.close()
        size = out.tell()
    _check_size(size, cap, fmt, rows)
    return {"rows": rows, "truncated": truncated, "size": size,
            "columns": [{"name": field.name, "dtype": str(field.type)} for field in schema]}


def _too_many_rows(cap: _RowCap, fmt: str) -> errors.PayloadTooLarge:
    return errors.PayloadTooLarge(
        f"the result has more than {cap.rows:,} rows, more than a download may hold; filter or aggregate it "
        "first, or download the first rows with the SQL endpoint's 'limit'", code="RESULT_TOO_LARGE",
        details={"format": fmt, "max_rows": cap.rows})


def _check_size(size: int, cap: _RowCap, fmt: str, rows: int) -> None:
    if size > cap.max_bytes:
        raise errors.PayloadTooLarge(
            f"the {fmt} file passed the {cap.max_bytes:,}-byte download limit after {rows:,} rows; select fewer "
            "rows or columns" + ("" if fmt == "parquet" else ", or download it as Parquet (compressed)"),
            code="RESULT_TOO_LARGE", details={"format": fmt, "max_bytes": cap.max_bytes, "rows_written": rows})
