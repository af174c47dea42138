"""One table-size budget for every upload format; Parquet files decoded under it before polars sees them.

Parquet is compressed with nothing bounding the ratio: a 600 KB file of one repeated value is 200 million
rows. Its footer states the table's size, and the readers take it as an upper bound (pyarrow and polars never
return more rows than a row group states, nor pyarrow more values than a column chunk states), so an honest
bomb is refused before anything is decoded. The bytes that decide memory are not the footer's, though: each
page's header states what it decompresses to, and a dictionary entry or a DELTA_BYTE_ARRAY prefix repeats
from a few bytes a row. So the page headers are read here over the very byte ranges pyarrow will read, and
the file is decoded in small batches, each counted before it is materialised: byte-array columns arrive as
dictionaries, whose decoded size is the sum of the lengths they reference, or, where that would be slow, in
batches small enough for their longest dictionary entry. polars only ever sees those batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from common.errors import BadRequest, PayloadTooLarge

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

MAX_PAGES = 200_000  # a 100M-cell table needs about 5,000 pages at the writers' usual 20,000 rows a page
_MAX_FOOTER_BYTES = 16 * 1024 * 1024  # parsed, a footer takes ~8x its size: 22 MB (200,000 chunks) took 194 MB
_BATCH_CELLS = 1 << 20  # cells decoded per batch
_BATCH_BYTES = 16 * 1024 * 1024  # decoded bytes materialised at once
_HEADER_READS = (256, 64 * 1024, 16 * 1024 * 1024)  # a page header is tens of bytes; Arrow allows 16 MiB
_FIXED_WIDTHS = {"BOOLEAN": 1, "INT32": 4, "INT64": 8, "INT96": 12, "FLOAT": 4, "DOUBLE": 8}
# pyarrow's default reads every column chunk whole before decoding a row: 64 KiB at a time instead.
_STREAMED = {"pre_buffer": False, "buffer_size": 64 * 1024}
_MAX_PAGE_SET_BYTES = 256 * 1024 * 1024  # one decompressed page per column, held together while reading
_DATA_PAGE, _DICTIONARY_PAGE, _DATA_PAGE_V2 = 0, 2, 3
_DICTIONARY_ENCODINGS = (2, 8)  # PLAIN_DICTIONARY, RLE_DICTIONARY
_DELTA_LENGTH_BYTE_ARRAY, _DELTA_BYTE_ARRAY = 6, 7


def check_cells(rows: int, columns: int, max_cells: int) -> None:
    """Refuse a table of more than ``max_cells`` cells (rows x columns)."""
    if rows * columns > max_cells:
        raise PayloadTooLarge(
            f"the table has {rows:,} rows x {columns:,} columns = {rows * columns:,} cells; at most "
            f"{max_cells:,} are allowed", code="TABLE_TOO_LARGE",
            details={"rows": rows, "columns": columns, "max_cells": max_cells})


def _too_large(message: str, **details: int) -> PayloadTooLarge:
    return PayloadTooLarge(message, code="TABLE_TOO_LARGE", details=details)


@dataclass
class _Leaf:
    """What one leaf column's pages hold, over every row group."""

    path: str
    byte_array: bool
    top_level: bool
    largest: int = 0  # largest page: no single value is longer
    dictionary: bool = False  # a dictionary page: a few bytes of index can stand for a long value
    plain: bool = False  # a data page not dictionary-encoded (a writer's fallback past its dictionary size)
    delta: bool = False  # a DELTA_* byte-array page, which pyarrow cannot decode into a dictionary
    prefixed: bool = False  # a DELTA_BYTE_ARRAY page: each value may repeat the one before it


@dataclass(frozen=True)
class ParquetPlan:
    """How to decode a Parquet upload within the budget, decided before any value is decoded."""

    schema: pa.Schema
    as_dictionary: list[str]  # byte-array leaves decoded as dictionaries, so their size is known first
    batch_rows: int


def plan_parquet(path: str, max_cells: int, max_bytes: int) -> ParquetPlan:
    """Check the Parquet file's footer and page headers against the budget; return how to decode it."""
    import pyarrow.parquet as pq

    _check_footer_size(path)
    upload = pq.ParquetFile(path)
    schema = upload.schema_arrow
    leaves = [_Leaf(column.path, column.physical_type == "BYTE_ARRAY", column.path == column.name)
              for column in upload.schema]
    _check_footer(upload, len(schema), max_cells, max_bytes)
    with open(path, "rb") as source:
        _walk_pages(source, upload.metadata, leaves, max_bytes)
    amplifying = [leaf for leaf in leaves if leaf.byte_array and (leaf.dictionary or leaf.prefixed)]
    # Dictionary decoding is cheap where every page is dictionary-encoded; a writer's plain fallback pages
    # would have to be hashed, so those columns are decoded as values, in batches their longest entry sizes.
    as_dictionary = [leaf for leaf in amplifying if not leaf.delta and (not leaf.plain or not leaf.top_level)]
    probed = [leaf for leaf in amplifying if not leaf.delta and leaf not in as_dictionary]
    row_bytes = _longest_entries(path, upload.metadata.num_row_groups, probed)
    row_bytes += sum(leaf.largest for leaf in amplifying if leaf.delta)
    batch_rows = max(1, min(_BATCH_CELLS // max(len(schema), 1), _BATCH_BYTES // max(row_bytes, 1)))
    return ParquetPlan(schema, [leaf.path for leaf in as_dictionary], batch_rows)


def read_batches(path: str, plan: ParquetPlan, max_cells: int, max_bytes: int) -> Iterator[pa.RecordBatch]:
    """Yield the file's rows in batches of at most _BATCH_BYTES decoded, each counted before it is decoded."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    reader = pq.ParquetFile(path, read_dictionary=plan.as_dictionary, **_STREAMED)
    # Row group by row group: a batch spanning two would hold two dictionaries, which pyarrow cannot nest.
    batches = (batch for group in range(reader.metadata.num_row_groups)
               for batch in reader.iter_batches(batch_size=plan.batch_rows, row_groups=[group], use_threads=False))
    rows = decoded = 0
    try:
        for batch in batches:
            size = _batch_bytes(batch)
            rows, decoded = rows + batch.num_rows, decoded + size
            check_cells(rows, len(plan.schema), max_cells)
            if decoded > max_bytes:
                raise _too_large(f"the table decodes to more than {max_bytes:,} bytes", max_bytes=max_bytes)
            for piece in _pieces(batch, size):
                piece = piece.cast(plan.schema)
                piece.validate(full=True)  # pyarrow does not check that strings are UTF-8; polars trusts it
                yield piece
    finally:
        reader.close()
        # Arrow's allocator keeps freed pages for reuse; the polars steps that follow cannot use them.
        pa.default_memory_pool().release_unused()


def _check_footer_size(path: str) -> None:
    with open(path, "rb") as handle:
        size = handle.seek(0, 2)
        handle.seek(max(size - 8, 0))
        tail = handle.read(8)
    footer = int.from_bytes(tail[:4], "little")
    # A length past the file's own size is damage, which pyarrow reports as such.
    if tail[4:] == b"PAR1" and _MAX_FOOTER_BYTES < footer <= size - 12:
        raise _too_large(f"the file's footer is {footer:,} bytes; at most {_MAX_FOOTER_BYTES:,} are allowed",
                         footer_bytes=footer, max_footer_bytes=_MAX_FOOTER_BYTES)


def _check_footer(upload: pq.ParquetFile, columns: int, max_cells: int, max_bytes: int) -> None:
    metadata = upload.metadata
    if metadata.num_row_groups * metadata.num_columns > MAX_PAGES:  # each chunk holds a page at least
        raise _too_large(f"the file holds more than {MAX_PAGES:,} column chunks", max_pages=MAX_PAGES)
    groups = [metadata.row_group(index) for index in range(metadata.num_row_groups)]
    # Row groups, not the file's total: the readers bound what they decode by each row group's count.
    check_cells(sum(group.num_rows for group in groups), columns, max_cells)
    values = stated = 0
    for leaf in range(metadata.num_columns):
        column = upload.schema.column(leaf)
        width = column.length if column.physical_type == "FIXED_LEN_BYTE_ARRAY" else \
            _FIXED_WIDTHS.get(column.physical_type)
        for group in groups:
            chunk = group.column(leaf)
            values += chunk.num_values
            stated += chunk.num_values * width if width else chunk.total_uncompressed_size
    if values > max_cells:  # nested columns: a row can hold many values
        raise _too_large(f"the table holds {values:,} values; at most {max_cells:,} are allowed",
                         values=values, max_cells=max_cells)
    if stated > max_bytes:
        raise _too_large(f"the table decodes to {stated:,} bytes; the limit is {max_bytes:,}",
                         decoded_bytes=stated, max_bytes=max_bytes)


def _walk_pages(source: BinaryIO, metadata: pq.FileMetaData, leaves: list[_Leaf], max_bytes: int) -> None:
    pages = total = 0
    for group in range(metadata.num_row_groups):
        for index, leaf in enumerate(leaves):
            count, size = _walk_chunk(source, metadata.row_group(group).column(index), leaf, MAX_PAGES - pages)
            pages, total = pages + count, total + size
    if total > max_bytes:
        raise _too_large(f"the file's pages decompress to {total:,} bytes; the limit is {max_bytes:,}",
                         decoded_bytes=total, max_bytes=max_bytes)
    # pyarrow holds one decompressed page of every column while it reads a batch.
    working_set = sum(leaf.largest for leaf in leaves)
    if working_set > _MAX_PAGE_SET_BYTES:
        raise _too_large(f"reading the file holds {working_set:,} bytes of pages at once; the limit is "
                         f"{_MAX_PAGE_SET_BYTES:,}", page_bytes=working_set, max_page_bytes=_MAX_PAGE_SET_BYTES)


def _walk_chunk(source: BinaryIO, chunk: pq.ColumnChunkMetaData, leaf: _Leaf, pages_left: int) -> tuple[int, int]:
    """Read one column chunk's page headers as pyarrow will; return its page count and decompressed bytes."""
    # Arrow's own range: from the dictionary page when it comes first, for the footer's compressed size,
    # stopping once the pages have given the values the footer states.
    start = chunk.data_page_offset
    if chunk.has_dictionary_page and 0 < (chunk.dictionary_page_offset or 0) < start:
        start = chunk.dictionary_page_offset
    position, end, seen, pages, total = start, start + chunk.total_compressed_size, 0, 0, 0
    while position < end and seen < chunk.num_values:
        if pages == pages_left:
            raise _too_large(f"the file holds more than {MAX_PAGES:,} pages", max_pages=MAX_PAGES)
        header, length = _page_header(source, position)
        kind, size, stored = header.get(1), header.get(2), header.get(3)
        body = header.get({_DATA_PAGE: 5, _DATA_PAGE_V2: 8}.get(kind, 0))
        body = body if isinstance(body, dict) else {}
        values, encoding = body.get(1, 0), body.get(2 if kind == _DATA_PAGE else 4)
        if not all(isinstance(number, int) and number >= 0 for number in (kind, size, stored, values)):
            raise BadRequest("the Parquet file has a damaged page header", code="CORRUPT_FILE")
        leaf.largest, leaf.dictionary = max(leaf.largest, size), leaf.dictionary or kind == _DICTIONARY_PAGE
        if kind in (_DATA_PAGE, _DATA_PAGE_V2):
            leaf.plain = leaf.plain or encoding not in _DICTIONARY_ENCODINGS
            leaf.delta = leaf.delta or encoding in (_DELTA_LENGTH_BYTE_ARRAY, _DELTA_BYTE_ARRAY)
            leaf.prefixed = leaf.prefixed or encoding == _DELTA_BYTE_ARRAY
        seen, total = seen + values, total + size
        position, pages = position + length + stored, pages + 1
    return pages, total


def _longest_entries(path: str, row_groups: int, leaves: list[_Leaf]) -> int:
    """Return the sum over ``leaves`` of their longest dictionary entry, read by decoding one row a row group."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    longest = 0
    for leaf in leaves:
        # One column at a time: pyarrow sets aside ~16 MB for each column it decodes this way.
        reader, entry = pq.ParquetFile(path, read_dictionary=[leaf.path], **_STREAMED), 0
        for group in range(row_groups):
            first = next(reader.iter_batches(batch_size=1, row_groups=[group], columns=[leaf.path],
                                             use_threads=False), None)
            if first is not None and pa.types.is_dictionary(first.column(0).type):
                entry = max(entry, pc.max(pc.binary_length(first.column(0).dictionary)).as_py() or 0)
        longest += entry
    return longest


def _page_header(source: BinaryIO, position: int) -> tuple[dict, int]:
    """Parse the Thrift page header at ``position``; return its fields and its length in bytes."""
    for size in _HEADER_READS:
        source.seek(position)
        data = source.read(size)
        try:
            header, end = _struct(data, 0, 0)
            return header, end
        except IndexError:
            if len(data) < size:
                break  # the file ends inside the header
    raise BadRequest("the Parquet file has a truncated or oversized page header", code="CORRUPT_FILE")


def _varint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, position
        shift += 7
        if shift > 63:
            raise BadRequest("the Parquet file has a damaged page header", code="CORRUPT_FILE")


def _zigzag(value: int) -> int:
    return (value >> 1) ^ -(value & 1)


def _struct(data: bytes, position: int, depth: int) -> tuple[dict, int]:
    """Read a Thrift compact-protocol struct: integers and nested structs by field id, everything else skipped."""
    fields: dict[int, object] = {}
    field = 0
    while True:
        byte = data[position]
        position += 1
        kind = byte & 0x0F
        if kind == 0:
            return fields, position
        if byte >> 4:
            field += byte >> 4
        else:
            raw, position = _varint(data, position)
            field = _zigzag(raw)
        fields[field], position = _value(data, position, kind, depth)


def _value(data: bytes, position: int, kind: int, depth: int) -> tuple[object, int]:
    if kind >= 9 and depth > 8:  # a page header nests two levels; deeper is a recursion bomb
        raise BadRequest("the Parquet file has a damaged page header", code="CORRUPT_FILE")
    if kind in (1, 2):  # a boolean held in the field header itself
        return kind == 1, position
    if kind in (4, 5, 6):
        raw, position = _varint(data, position)
        return _zigzag(raw), position
    if kind == 12:
        return _struct(data, position, depth + 1)
    if kind == 3:
        return None, position + 1
    if kind == 7:
        return None, position + 8
    if kind == 8:
        length, position = _varint(data, position)
        return None, position + length
    if kind in (9, 10, 11):
        return None, _skip_collection(data, position, kind, depth)
    raise BadRequest("the Parquet file has a damaged page header", code="CORRUPT_FILE")


def _skip_collection(data: bytes, position: int, kind: int, depth: int) -> int:
    if kind == 11:  # map: a varint size, then one byte of key and value types
        count, position = _varint(data, position)
        element_kinds = (data[position] >> 4, data[position] & 0x0F) if count else ()
        position += 1 if count else 0
    else:
        count, element_kinds = data[position] >> 4, (data[position] & 0x0F,)
        position += 1
        if count == 15:
            count, position = _varint(data, position)
    if count > len(data):
        raise IndexError  # more elements than bytes: read a longer header, or fail as truncated
    for _ in range(count):
        for element_kind in element_kinds:
            # Booleans inside a collection take a byte each.
            position = position + 1 if element_kind in (1, 2) else _value(data, position, element_kind, depth + 1)[1]
    return position


def _batch_bytes(batch: pa.RecordBatch) -> int:
    return sum(_decoded_bytes(column) for column in batch.columns)


def _decoded_bytes(array: pa.Array) -> int:
    """Return the bytes ``array`` takes once its dictionaries are decoded, without decoding them."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = array.type
    if pa.types.is_dictionary(kind) and kind.value_type in _binary_types():
        referenced = pc.sum(pc.take(pc.binary_length(array.dictionary), array.indices)).as_py()
        return (referenced or 0) + 8 * len(array)
    if pa.types.is_struct(kind):
        return len(array) + sum(_decoded_bytes(child) for child in array.flatten())
    if pa.types.is_map(kind):
        return 8 * len(array) + _decoded_bytes(array.keys) + _decoded_bytes(array.items)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return 8 * len(array) + _decoded_bytes(array.flatten())
    return array.nbytes


def _binary_types() -> tuple[pa.DataType, ...]:
    import pyarrow as pa

    return pa.string(), pa.binary(), pa.large_string(), pa.large_binary(), pa.string_view(), pa.binary_view()


def _pieces(batch: pa.RecordBatch, size: int) -> list[pa.RecordBatch]:
    """Split ``batch`` by rows until each piece decodes to at most _BATCH_BYTES (one row stays whole)."""
    if size <= _BATCH_BYTES or batch.num_rows < 2:
        return [batch]
    half = batch.num_rows // 2
    return [piece for part in (batch.slice(0, half), batch.slice(half))
            for piece in _pieces(part, _batch_bytes(part))]
