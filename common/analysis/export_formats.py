"""The formats a result table downloads as (CSV, XLSX, Parquet), each written batch by batch into an open file.

Every writer takes the Arrow record batches DuckDB streams, holds at most one batch (Parquet: one row group of
at most ``ROW_GROUP_ROWS`` rows or ``ROW_GROUP_BYTES``), and says how many bytes the file holds so far, so a
download's byte budget is checked against the real file while it is written. A value a format cannot hold
as it is becomes text the same way in every format (``export_text``). CSV is written by Polars, as a
dataset's CSV export is (RFC 4180, UTF-8 without a byte-order mark; XLSX is the format for Excel); Parquet by
PyArrow (Snappy, which every reader, Power Query's included, reads); XLSX by ``xlsx_writer``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, BinaryIO, Protocol

from common.analysis.export_text import csv_holds, parquet_holds, portable_batch, portable_schema
from common.errors import BadRequest

if TYPE_CHECKING:
    import pyarrow as pa

# format -> (content type, file extension)
FORMATS = {
    "csv": ("text/csv; charset=utf-8", "csv"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
    "parquet": ("application/vnd.apache.parquet", "parquet"),
}
ROW_GROUP_ROWS = 64 * 1024
ROW_GROUP_BYTES = 16 * 1024 * 1024


def download_format(raw: str | None, *, default: str = "csv", accepted: tuple[str, ...] = tuple(FORMATS)) -> str:
    """Check a request's ``format``: one of ``accepted`` (``default`` when absent)."""
    if raw is None or raw == "":
        return default
    if raw not in accepted:
        raise BadRequest(f"format must be one of {', '.join(accepted)}, got {raw!r}", code="UNSUPPORTED_FORMAT",
                         details={"accepted": list(accepted)})
    return raw


class ResultWriter(Protocol):
    """Writes one table into an open binary file; the caller closes the file after ``close``."""

    def write(self, batch: pa.RecordBatch) -> None:
        """Append the batch's rows (in the schema the writer was opened with)."""

    def size(self) -> int:
        """Return the bytes written to the file so far."""

    def close(self) -> None:
        """Finish the file (a Parquet footer, the XLSX package)."""


def open_writer(fmt: str, out: BinaryIO, schema: pa.Schema) -> ResultWriter:
    """Start writing a table of ``schema`` as ``fmt`` into ``out``."""
    if fmt == "csv":
        return CsvWriter(out, schema)
    if fmt == "parquet":
        return ParquetWriter(out, schema)
    if fmt == "xlsx":
        from common.analysis.xlsx_writer import XlsxWriter

        return XlsxWriter(out, schema)
    raise ValueError(f"not a download format: {fmt}")


class CsvWriter:
    """A header line, then each batch's rows, as Polars writes CSV."""

    def __init__(self, out: BinaryIO, schema: pa.Schema):
        import polars as pl

        self._out = out
        self._schema = portable_schema(schema, csv_holds)
        pl.from_arrow(self._schema.empty_table()).write_csv(out)  # the header, even for no rows

    def write(self, batch: pa.RecordBatch) -> None:
        import polars as pl

        pl.from_arrow(portable_batch(batch, self._schema)).write_csv(self._out, include_header=False)

    def size(self) -> int:
        return self._out.tell()

    def close(self) -> None:
        self._out.flush()


class ParquetWriter:
    """Row groups of up to ``ROW_GROUP_ROWS`` rows (or ``ROW_GROUP_BYTES``), each written as it fills."""

    def __init__(self, out: BinaryIO, schema: pa.Schema):
        import pyarrow.parquet as pq

        self._out = out
        self._schema = portable_schema(schema, parquet_holds)
        self._writer = pq.ParquetWriter(out, self._schema, compression="snappy")
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = self._pending_bytes = 0

    def write(self, batch: pa.RecordBatch) -> None:
        batch = portable_batch(batch, self._schema)
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        self._pending_bytes += batch.nbytes
        if self._pending_rows >= ROW_GROUP_ROWS or self._pending_bytes >= ROW_GROUP_BYTES:
            self._flush()

    def size(self) -> int:
        return self._out.tell()

    def close(self) -> None:
        self._flush()
        self._writer.close()

    def _flush(self) -> None:
        import pyarrow as pa

        if self._pending:
            table = pa.Table.from_batches(self._pending, schema=self._schema)
            self._writer.write_table(table, row_group_size=max(table.num_rows, 1))
        self._pending, self._pending_rows, self._pending_bytes = [], 0, 0
